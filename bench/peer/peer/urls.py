"""Only allauth's headless API is served: /_allauth/app/v1/..."""
from django.urls import include, path

urlpatterns = [path("_allauth/", include("allauth.headless.urls"))]
