"""Several workers under the pre-fork master, from the command line.

    palfrey docs_src.workers.workers_cli:app --workers 4 \
        --limit-max-requests 10000 --limit-max-requests-jitter 1000 \
        --timeout-worker-healthcheck 10 --timeout-graceful-shutdown 30

`--workers auto` starts one worker per CPU this process may use. Each worker imports the app and runs
its own lifespan, so the startup message below is printed once per worker. Send the master HUP to
restart every worker with new code (one at a time, no request lost), TTIN/TTOU to add or remove one.
"""

import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                print(f"worker {os.getpid()} started")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
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
