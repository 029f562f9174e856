from django.urls import path

from accounts import api

urlpatterns = [
    path("session", api.SessionView.as_view(), name="api-session"),
    path("users", api.UserCreateView.as_view(), name="api-user-create"),
    path("users/<int:pk>", api.UserDetailView.as_view(), name="api-user-detail"),
]
