from django.contrib.auth import authenticate, login, logout
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import User
from accounts.permissions import RoleModelPermissions
from accounts.serializers import SessionLoginSerializer, UserCreateSerializer, UserSerializer
from billing_project.api_parsers import JSONParser, refuse_a_body
from billing_project.api_schema import error_response
from billing_project.errors import DomainError, NotAllowed


class SessionView(APIView):
    """Sign in with email and password (session cookie), or sign out."""

    permission_classes = [AllowAny]
    # JSON only: a cross-site HTML form cannot send it, so no other site can sign a browser in (login CSRF).
    parser_classes = [JSONParser]

    @extend_schema(
        request=SessionLoginSerializer,
        responses={
            200: UserSerializer,
            400: error_response("`error.code`: `invalid` (a field is missing or not valid), `invalid_credentials`"),
            403: error_response("`error.code`: `locked_out` (too many failed sign-ins), `permission_denied`"),
        },
    )
    def post(self, request):
        serializer = SessionLoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        django_request = request._request
        user = authenticate(
            django_request, username=serializer.validated_data["email"], password=serializer.validated_data["password"]
        )
        if user is None:
            if getattr(django_request, "axes_locked_out", False):
                # Answer in the API's error format: with the flag set, AxesMiddleware would swap in its HTML page.
                django_request.axes_locked_out = False
                raise NotAllowed("Too many failed sign-ins: this account is locked for now.", code="locked_out")
            raise DomainError("The email and password do not match.", code="invalid_credentials")
        login(django_request, user)
        return Response(UserSerializer(user).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        refuse_a_body(request)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserCreateView(generics.CreateAPIView):
    """Create a staff user in one or more roles (Admin only)."""

    queryset = User.objects.all()
    serializer_class = UserCreateSerializer
    permission_classes = [IsAuthenticated, RoleModelPermissions]
    # JSON only: a form's empty field reads as "not given", which turned `password=` into no password at all.
    parser_classes = [JSONParser]

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_create(actor=request.user, **serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetailView(generics.RetrieveAPIView):
    """A user: yourself always; anyone else with the permission to view users.

    Someone you may not see answers exactly as someone who does not exist, so ids cannot be probed.
    """

    serializer_class = UserSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        users = User.objects.prefetch_related("groups")
        if self.request.user.has_perm("accounts.view_user"):
            return users
        return users.filter(pk=self.request.user.pk)
