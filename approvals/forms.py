"""Forms of the approvals admin: they carry the comment a decision is given with; the services decide the rest
(a rejection or a revert without a comment is refused by the service as well)."""

from django import forms
from unfold.forms import ActionForm, BaseDialogForm
from unfold.widgets import UnfoldAdminRadioSelectWidget, UnfoldAdminTextareaWidget

from approvals.models import ApprovalRequest
from approvals.selectors import approval_reroute_choices

COMMENT_MAX_LENGTH = 2000

# The look of the action select in unfold's coloured action bar, for the comment box next to it.
ACTION_BAR_INPUT = " ".join(
    [
        "group-[.changelist-actions]:!bg-white/20",
        "group-[.changelist-actions]:font-medium",
        "group-[.changelist-actions]:grow",
        "group-[.changelist-actions]:px-2",
        "group-[.changelist-actions]:py-1",
        "group-[.changelist-actions]:rounded-default",
        "group-[.changelist-actions]:!text-current",
        "group-[.changelist-actions]:!outline-primary-400",
        "group-[.changelist-actions]:lg:w-96",
    ]
)


class QueueActionForm(ActionForm):
    """The queue's action bar: the action, and the comment it is given with (required to reject)."""

    comment = forms.CharField(
        label="",
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={
                "class": ACTION_BAR_INPUT,
                "placeholder": "Comment (required to reject)",
                "aria-label": "Comment",
            }
        ),
    )


class DecisionForm(BaseDialogForm):
    """The dialog of an approval: an optional comment."""

    comment = forms.CharField(
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Kept in the request's history.",
    )


class CommentRequiredForm(BaseDialogForm):
    """The dialog of a rejection or a revert: a comment is required."""

    comment = forms.CharField(
        max_length=COMMENT_MAX_LENGTH,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Required; kept in the request's history.",
    )


class WrappingRadioSelect(UnfoldAdminRadioSelectWidget):
    """Unfold's radio buttons, with labels that wrap in a narrow dialog instead of being cut off."""

    option_template_name = "approvals/widgets/radio_option_wrapped.html"


class RerouteForm(BaseDialogForm):
    """The dialog of a re-route: one of the routes the request may take (approval_reroute_choices), and why.

    A target's admin says which request the dialog is about (`approval_request`); approvals.services checks the
    route again when it is taken."""

    route = forms.ChoiceField(
        label="Route it to",
        widget=WrappingRadioSelect(),
        help_text="Only routes someone can approve now are offered. Approvals already given stay for the steps "
        "the new route keeps; the others are asked again.",
    )
    comment = forms.CharField(
        max_length=COMMENT_MAX_LENGTH,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Required; kept in the request's history.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.approval_request()
        choices = approval_reroute_choices(actor=self.request.user, request=request) if request else []
        self.fields["route"].choices = choices
        if not choices:
            self.fields["route"].help_text = (
                "No route can be approved by anyone now: give the customer a CSM, or someone the role its rule needs, "
                "first."
            )

    def approval_request(self) -> ApprovalRequest | None:
        """The pending request the dialog re-routes, from `self.object_id` (the target's admin knows how)."""
        raise NotImplementedError
