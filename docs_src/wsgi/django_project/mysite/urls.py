from django.urls import path

from mysite import views

urlpatterns = [
    path("", views.page, name="page"),
    path("hello/<str:name>/", views.hello, name="hello"),
    path("upload/", views.upload, name="upload"),
    path("count/", views.count, name="count"),
    path("source/", views.source, name="source"),
]
