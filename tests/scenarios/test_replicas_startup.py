"""Replicas start at the same moment: three processes setting up one fresh Postgres together all come up (the
checkpointer's migrations and the outbox's table are set up under an advisory lock, one process at a time)."""

from __future__ import annotations

from pathlib import Path

from tests.agent.test_postgres import free_port
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import SECRET, replica_env, start


async def test_three_replicas_starting_together_on_a_fresh_postgres_all_come_up(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Up and answering."))
    ports = [free_port() for _ in range(3)]
    envs = [
        replica_env(
            tg,
            llm,
            tmp_path / str(n),
            redis_url,
            postgres_url,
            TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{ports[0]}/telegram",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
            TELEGRAM_WEBHOOK_PORT=str(port),
        )
        for n, port in enumerate(ports)
    ]
    processes = [await start(env, tmp_path / str(n)) for n, env in enumerate(envs)]  # all three at once
    try:

        def up_or_exited() -> bool:
            set_up = len([call for call in tg.calls if call.method == "setWebhook" and call.status == 200])
            return set_up == 3 or any(process.returncode is not None for process in processes)

        await tg.wait_for(up_or_exited, timeout=120)
        for n, process in enumerate(processes):
            assert process.returncode is None, (tmp_path / str(n) / "bot.log").read_text()[-2000:]
        tg.user_message(dm, alice, "are you there?")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Up and answering."], timeout=30)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
