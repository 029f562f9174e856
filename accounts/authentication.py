from rest_framework import authentication, exceptions

from accounts import services


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` for machine clients."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Bearer <token>'.")
        token = services.api_token_authenticate(raw_key=header[1].decode("ascii", errors="replace"))
        if token is None:
            raise exceptions.AuthenticationFailed("The API token is not valid, has expired or was revoked.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
