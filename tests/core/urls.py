"""Test-only routes that fail on purpose, mounted beside the real URL map."""

from django.urls import include, path
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class BearerOnly(BaseAuthentication):
    """Recognises no token, so every call is unauthenticated (401 with a challenge)."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return 'Bearer realm="sfp"'


class EchoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    count = serializers.IntegerField(min_value=1)


class ValidatingView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        serializer = EchoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class ProtectedView(APIView):
    authentication_classes = [BearerOnly]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"secret": True})


class CrashingView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("database password is hunter2")


def plain_django_crash(request):
    raise ValueError("boom with secret token sfp_app_abc")


urlpatterns = [
    path("sfp/api/test/validate", ValidatingView.as_view()),
    path("sfp/api/test/protected", ProtectedView.as_view()),
    path("sfp/api/test/crash", CrashingView.as_view()),
    path("sfp/api/test/django-crash", plain_django_crash),
    path("", include("sfpserver.urls")),
]
