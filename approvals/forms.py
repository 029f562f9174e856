"""Forms of the approvals admin: they carry the comment a decision is given with; the services decide the rest
(a rejection or a revert without a comment is refused by the service as well)."""

from django import forms
from unfold.forms import ActionForm, BaseDialogForm
from unfold.widgets import UnfoldAdminTextareaWidget

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
