from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from accounts import services
from accounts.models import ApiToken, User, canonical_email
from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import ReadOnlyAdmin


class UniqueEmailMixin:
    """Login looks users up by email case-insensitively, so two emails may not differ only in case."""

    def clean_email(self):
        email = canonical_email(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email


class StaffUserCreationForm(UniqueEmailMixin, UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["email", "full_name"]


class StaffUserChangeForm(UniqueEmailMixin, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"

    def clean(self):
        cleaned_data = super().clean()
        if self.instance.is_portal_user and (cleaned_data.get("is_staff") or cleaned_data.get("is_superuser")):
            self.add_error("is_staff", "A customer portal user cannot be staff; remove the portal membership first.")
        return cleaned_data


@admin.register(User)
class UserAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, BaseUserAdmin, ModelAdmin):
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ["email", "full_name", "is_staff", "is_active", "roles", "last_login"]
    list_filter = ["is_staff", "is_active", "shared_only", "groups"]
    search_fields = ["email", "full_name"]
    ordering = ["email"]
    filter_horizontal = ["groups", "user_permissions"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "full_name", "password"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "shared_only", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        user = services.user_create(
            actor=request.user,
            email=form.cleaned_data["email"],
            full_name=form.cleaned_data["full_name"],
            password=form.cleaned_data.get("password1") or None,
        )
        obj.pk = user.pk
        obj.refresh_from_db()
        obj._state.adding = False

    @admin.display(description="Roles")
    def roles(self, user: User) -> str:
        return ", ".join(group.name for group in user.groups.all()) or "—"


admin.site.unregister(Group)
# Django's groups are this product's roles: page titles, breadcrumbs and the sidebar all say "Roles". Verbose names
# are not schema (migrations read a model's Meta, not these), so this needs no migration of django.contrib.auth.
Group._meta.verbose_name, Group._meta.verbose_name_plural = "role", "roles"
# The same for django-axes' record of sign-in attempts.
AccessAttempt._meta.verbose_name, AccessAttempt._meta.verbose_name_plural = "login attempt", "login attempts"


@admin.register(Group)
class RoleAdmin(ReadOnlyAdmin):
    """Roles are kept in code (accounts/roles.py); the admin shows them and who holds them."""

    list_display = ["name", "member_count"]
    search_fields = ["name"]
    fields = ["name", "permissions"]
    readonly_fields = ["name", "permissions"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(members=Count("user"))

    @admin.display(description="Members", ordering="members")
    def member_count(self, group) -> int:
        return group.members


class ApiTokenCreateForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name", "expires_at"]

    def clean_user(self):
        # services.api_token_create refuses it too; here it is a form error rather than a server error.
        user = self.cleaned_data["user"]
        if not user.is_active:
            raise forms.ValidationError("An inactive user cannot get an API token.")
        return user


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin):
    form = ApiTokenCreateForm
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__email"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["user", "name", "prefix", "expires_at", "created_at", "created_by", "last_used_at", "revoked_at"]

    def get_fields(self, request, obj=None):
        return ["user", "name", "expires_at"] if obj is None else self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        # A token is never edited: it is created, used and revoked.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        token, raw_key = services.api_token_create(
            actor=request.user,
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
        )
        obj.pk = token.pk
        obj.refresh_from_db()
        obj._state.adding = False
        obj.raw_key = raw_key  # for response_add only; never saved

    def response_add(self, request, obj, post_url_continue=None):
        """Show the key on a page of this response: a redirect would carry it in the messages cookie or the session."""
        context = self.admin_site.each_context(request) | {
            "opts": self.opts,
            "title": "API token created",
            "token": obj,
            "raw_key": obj.raw_key,
        }
        return TemplateResponse(request, "accounts/api_token_created.html", context)

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request, queryset):
        for token in queryset:
            services.api_token_revoke(actor=request.user, token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)
