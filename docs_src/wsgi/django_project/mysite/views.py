from django.core.signals import request_finished
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"name": "Django", "secure": request.is_secure()})


def hello(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, "page.html", {"name": name, "secure": request.is_secure()})


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    # Large files are spooled to a temporary file by Django as palfrey streams the body in.
    attachment = request.FILES["attachment"]
    return JsonResponse({"name": request.POST["name"], "size": attachment.size})


def count(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse((f"{n}\n" for n in range(1, 6)), content_type="text/plain")


def source(request: HttpRequest) -> FileResponse:
    # Served through palfrey's wsgi.file_wrapper, in blocks.
    return FileResponse(open(__file__, "rb"), content_type="text/x-python")


def _finished(sender: object, **kwargs: object) -> None:
    # Django sends request_finished from the response's close(), which palfrey always calls.
    print("django: request finished", flush=True)


request_finished.connect(_finished)
