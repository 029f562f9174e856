from rest_framework import serializers

from accounts.models import User
from accounts.roles import Role
from billing_project.api_fields import CharField, EmailField, ModelSerializer


class SessionLoginSerializer(serializers.Serializer):
    email = EmailField()
    password = CharField(trim_whitespace=False, style={"input_type": "password"})


class UserSerializer(ModelSerializer):
    roles = serializers.SerializerMethodField()
    customer = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_staff", "is_active", "roles", "customer", "date_joined"]
        read_only_fields = fields

    def get_roles(self, user: User) -> list[str]:
        return [group.name for group in user.groups.all()]

    def get_customer(self, user: User) -> int | None:
        membership = getattr(user, "portal_membership", None)
        return membership.customer_id if membership else None


class UserCreateSerializer(serializers.Serializer):
    email = EmailField()
    full_name = CharField(max_length=200)
    password = CharField(required=False, trim_whitespace=False, write_only=True)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.values), allow_empty=False)
