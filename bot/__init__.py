"""The application: settings, CLI, conversation runtime and the StreamingHandler."""
