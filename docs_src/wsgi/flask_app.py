"""A Flask app served by palfrey: Flask apps are WSGI apps, detected as such.

`palfrey docs_src.wsgi.flask_app:app` (add `--interface wsgi` to say so explicitly, `--threads N` to
size the thread pool each worker runs the app in).
"""

from flask import Flask, Response, render_template_string, request, stream_with_context

app = Flask(__name__)

PAGE = """<!doctype html>
<title>Palfrey + Flask</title>
<h1>Hello, {{ name }}!</h1>
<p><a href="{{ url_for('hello', name='palfrey') }}">Say hello to palfrey</a></p>
"""


@app.get("/")
def index() -> str:
    return render_template_string(PAGE, name="Flask")


@app.get("/hello/<name>")
def hello(name: str) -> str:
    return render_template_string(PAGE, name=name)


@app.post("/upload")
def upload() -> dict[str, int]:
    # request.stream reads the body as it arrives, so an upload of any size passes in bounded memory;
    # palfrey marks wsgi.input as terminated, so chunked uploads (no Content-Length) work too.
    received = 0
    for block in iter(lambda: request.stream.read(65536), b""):
        received += len(block)
    return {"received": received}


@app.post("/form")
def form() -> dict[str, object]:
    upload = request.files["attachment"]
    return {"name": request.form["name"], "filename": upload.filename, "size": len(upload.read())}


@app.get("/count")
def count() -> Response:
    # A generator response is streamed with chunked encoding, one chunk per item.
    def numbers():
        for number in range(1, 6):
            yield f"{number}\n"

    return Response(stream_with_context(numbers()), mimetype="text/plain")


@app.get("/client")
def client() -> dict[str, str | None]:
    # Behind a trusted proxy (--forwarded-allow-ips), X-Forwarded-Proto/-For reach Flask as the
    # request's scheme and remote address.
    return {"scheme": request.scheme, "remote_addr": request.remote_addr, "url": request.url}


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("an error inside a view")  # Flask answers 500 and logs it
