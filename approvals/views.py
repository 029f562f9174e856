"""Admin pages of approvals beyond the changelists: an action's attachment, served after an access check."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404

from approvals.models import ApprovalAction
from approvals.selectors import approval_list_for


def attachment_download(request, action_id: int) -> FileResponse:
    """The file attached to an action, to whoever may see its request (404 otherwise); never a link into MEDIA."""
    action = get_object_or_404(
        ApprovalAction.objects.filter(request__in=approval_list_for(request.user)).exclude(attachment=""),
        pk=action_id,
    )
    try:
        file = action.attachment.open("rb")
    except FileNotFoundError as error:
        raise Http404("The attachment is missing from storage.") from error
    return FileResponse(file, as_attachment=True, filename=action.attachment_filename)
