"""Maker-checker approval of any target (an invoice now, a settlement later), with an append-only action log.

This app imports no other app of the project (DESIGN.md, "Layout"): a target is referred to by
content type and id, and its app registers a handler (`approvals.registry`) that `approvals` calls
back when a request is submitted, decided or reopened.
"""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class ApprovalRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    target_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    target_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("target_type", "target_id")
    summary = models.CharField(max_length=300, help_text="What is to be approved, as it read when submitted.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    rule = models.JSONField(help_text="The rule that applied, frozen when the request was opened.")
    scope = models.CharField(
        "customer",
        max_length=64,
        blank=True,
        db_index=True,
        help_text="Whom the target concerns (an invoice: its customer's client id), as its handler named it when "
        "the request was opened; lists filter on it.",
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when a scheduled job (month-end) submitted it.",
    )
    opened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="approval_target_idx")]
        constraints = [
            # One open request per target at a time.
            models.UniqueConstraint(
                fields=["target_type", "target_id"],
                condition=Q(status__in=["pending", "approved", "rejected"]),
                name="approval_one_open_request",
            )
        ]

    def __str__(self) -> str:
        return f"{self.summary} ({self.get_status_display()})"


class AwaitingApproval(ApprovalRequest):
    """The admin's "Awaiting my approval" queue: the same rows, under their own admin page and permission."""

    class Meta:
        proxy = True
        verbose_name = "request awaiting my approval"
        verbose_name_plural = "awaiting my approval"


class ApprovalActionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Approval actions are never changed; record a new action instead.")

    def delete(self):
        raise PermissionError("Approval actions are never deleted; record a new action instead.")


class ApprovalAction(models.Model):
    class Kind(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        COMMENTED = "commented", "Commented"
        REVERTED = "reverted", "Reverted"
        WITHDRAWN = "withdrawn", "Withdrawn"
        REROUTED = "rerouted", "Re-routed"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="actions")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    step = models.CharField(max_length=64, blank=True, help_text="The rule's step an approval counts for.")
    comment = models.TextField(blank=True)
    attachment = models.FileField(upload_to="approvals/%Y/%m/", blank=True)
    reverts = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reverted_by")
    old_rule = models.JSONField(null=True, blank=True, help_text="For a re-route: the rule the request waited under.")
    new_rule = models.JSONField(null=True, blank=True, help_text="For a re-route: the rule it waits under since.")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = ApprovalActionQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.actor} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Approval actions are never changed; record a new action instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Approval actions are never deleted; record a new action instead.")

    @property
    def attachment_filename(self) -> str:
        return self.attachment.name.rsplit("/", 1)[-1] if self.attachment else ""
