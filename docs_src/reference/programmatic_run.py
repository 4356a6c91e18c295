"""Run palfrey from Python: `python -m docs_src.reference.programmatic_run`.

`palfrey.run()` takes the same settings as the command line, by their Python names, and runs the same
pre-fork master. Call it under `if __name__ == "__main__":` so forked workers never run it again.
"""

import os

import palfrey


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"Hello from worker {os.getpid()}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    palfrey.run(
        "docs_src.reference.programmatic_run:app",
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        workers=4,
        timeout_worker_healthcheck=10,
        backlog=2048,
    )
