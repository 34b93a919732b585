"""The LangGraph agent: model factory (ChatOpenAI or the offline demo model), graph and run loop."""
