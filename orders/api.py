"""Order desk API: orders and their lifecycle, documents (multipart uploads, review, downloads), tasks, comments,
sharing, expenses and partner settlements (Finance and Admin), and the reference data (order types, document types,
companies, registrars).

Every order is looked up through orders.selectors.order_list_for, so an order the caller may not see answers 404
with the same body as one that does not exist. A portal user reads their own customer's orders, their documents
and timeline, and writes nothing; tasks, comments and sharing are the back-office's own. Writes call the order
services; their refusals come back in the one error format, naming the field at fault.
"""

import html

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.http import FileResponse, Http404
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, parsers, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.response import Response

from accounts.idempotency import IDEMPOTENCY_PARAMETERS, idempotent
from accounts.models import User
from approvals.models import ApprovalRequest
from approvals.selectors import approval_state_for
from approvals.services import approval_approve, approval_reject, request_for
from billing_project.api_parsers import JSONParser
from billing_project.api_schema import error_response
from billing_project.errors import Conflict, DomainError, NotAllowed
from billing_project.formatting import money
from ledger.models import Allocation
from ledger.serializers import ApprovalNoteSerializer, ApprovalReasonSerializer
from orders import selectors
from orders.files import FILE_KINDS, clean_file_name
from orders.filters import (
    CompanyFilter,
    DocumentTypeFilter,
    OrderFilter,
    OrderTypeFilter,
    RegistrarFilter,
    RevenueShareAgreementFilter,
    SettlementFilter,
)
from orders.models import (
    Comment,
    Company,
    DocumentType,
    Expense,
    Order,
    OrderDocument,
    OrderDocumentFile,
    OrderStatusHistory,
    OrderType,
    OrderTypeDocument,
    OrderUserObjectPermission,
    Registrar,
    RevenueShareAgreement,
    Settlement,
    Task,
)
from orders.serializers import (
    CommentCreateSerializer,
    CommentSerializer,
    CommentUploadSerializer,
    CompanySerializer,
    DocumentReviewSerializer,
    DocumentTypeSerializer,
    DocumentUploadSerializer,
    ExpenseCreateSerializer,
    ExpenseReverseSerializer,
    ExpenseSerializer,
    ExpenseUploadSerializer,
    GrantSerializer,
    OrderCreateSerializer,
    OrderCreditSerializer,
    OrderDetailSerializer,
    OrderDocumentDetailSerializer,
    OrderSerializer,
    OrderTransitionSerializer,
    OrderTypeSerializer,
    OrderUpdateSerializer,
    RegistrarSerializer,
    RevenueShareAgreementSerializer,
    RevenueShareAgreementUpdateSerializer,
    SettlementDetailSerializer,
    SettlementSerializer,
    SettleResultSerializer,
    TaskCreateSerializer,
    TaskSerializer,
    TaskUpdateSerializer,
    UserRefSerializer,
)
from orders.services import comments, documents, expenses, sharing, tasks
from orders.services.agreements import revenue_share_agreement_create, revenue_share_agreement_update
from orders.services.billing import order_credit, order_invoice_create
from orders.services.orders import order_create, order_transition, order_update
from orders.services.settlements import order_settle, settlement_explanation

NO_SUCH_ORDER = "No order matches the given query."
PORTAL_READ_ONLY = "The portal reads its own orders; it changes nothing."
BACK_OFFICE_ONLY = "Tasks, comments and sharing are the back-office's own; the portal shows status and documents."
NOT_YOURS = "`not_found` (no such order among those the caller may see, or nothing of that id on it)"
HIDDEN_BASE_CHARGE = "Your role does not see an order's base charge, so it does not set it."


# --- Reading multipart uploads ----------------------------------------------------------------------------------


class _PlainNameMultiPartParser(DjangoMultiPartParser):
    """Django's parser, but a file name is checked rather than cut down to its last part: `../x.pdf` or a name
    holding NUL is refused, not stored as `x.pdf`. A refused name is replaced by a marker, told apart after
    parsing, when the field it came in is known."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.refused: dict[str, DomainError] = {}

    def sanitize_file_name(self, file_name):
        name = html.unescape(file_name)
        try:
            return clean_file_name(name)
        except DomainError as error:
            marker = f"refused-{len(self.refused)}"
            self.refused[marker] = error
            return marker


class UploadParser(parsers.MultiPartParser):
    """multipart/form-data with files, for the views that take them. A file's name must be a plain name (no
    path, no control characters, not too long): anything else is a 400 naming the field, before anything is
    stored. Kind and size are checked by the service that stores the file."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        parser = _PlainNameMultiPartParser(meta, stream, request.upload_handlers, encoding)
        try:
            data, files = parser.parse()
        except MultiPartParserError as error:
            raise ParseError(f"Multipart form parse error - {error}") from None
        for field, uploads in files.lists():
            for upload in uploads:
                refusal = parser.refused.get(upload.name)
                if refusal is not None:
                    raise DomainError(refusal.message, code=refusal.code, fields={field: [refusal.message]})
        return parsers.DataAndFiles(data, files)


# --- Permissions and lookups ------------------------------------------------------------------------------------


class OrderDeskPermissions(permissions.BasePermission):
    """The permissions the view names for the request's method in `required_permissions` (a model permission
    of the caller's roles, accounts/roles.py). A portal user reads where the view lets the portal read
    (`portal_reads`) and writes nothing. Which orders a caller sees is orders.selectors' answer, not this."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method == "OPTIONS":
            return True
        if user.is_portal_user:
            if request.method in permissions.SAFE_METHODS and getattr(view, "portal_reads", True):
                return True
            self.message = PORTAL_READ_ONLY if request.method not in permissions.SAFE_METHODS else BACK_OFFICE_ONLY
            return False
        method = "GET" if request.method == "HEAD" else request.method
        return user.has_perms(view.required_permissions.get(method, ["_no_such_permission"]))


def found(orders: QuerySet[Order], pk) -> Order:
    """The order of that id among `orders`; 404 for any other id, one that is not a number too (`/api/orders/x`)."""
    try:
        order = orders.filter(pk=pk).first()
    except (TypeError, ValueError):
        order = None
    if order is None:
        raise Http404(NO_SUCH_ORDER)
    return order


class OrderDeskView:
    """What every order desk view shares: its permissions and the caller's order, found through the selector."""

    permission_classes = [permissions.IsAuthenticated, OrderDeskPermissions]
    required_permissions: dict[str, list[str]] = {}
    portal_reads = True

    def visible_order(self, pk) -> Order:
        return found(selectors.order_list_for(self.request.user).select_related("customer", "order_type"), pk)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["may_see_money"] = selectors.order_may_see_money(self.request.user)
        context["may_see_payment_status"] = selectors.order_may_see_payment_status(self.request.user)
        context["may_see_settlements"] = selectors.settlement_may_see(self.request.user)
        return context


def _read(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, context={"request": request}, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _refuse_hidden_money(user: User, data: dict) -> None:
    if "base_charge" in data and not selectors.order_may_see_money(user):
        raise NotAllowed(HIDDEN_BASE_CHARGE, fields={"base_charge": [HIDDEN_BASE_CHARGE]})


def _by_order(permission: str) -> list[str]:
    return [f"orders.{permission}"]


# --- Orders -----------------------------------------------------------------------------------------------------


def with_settlement_status(orders: QuerySet[Order], user: User) -> QuerySet[Order]:
    """The orders' live settlements, for their `settlement_status`, for those who see settlements (one query)."""
    if not selectors.settlement_may_see(user):
        return orders
    return orders.prefetch_related(selectors.live_settlements_prefetch())


def order_detail_queryset(user: User) -> QuerySet[Order]:
    """The caller's orders with what a detail shows, in a fixed number of queries."""
    orders = (
        selectors.order_list_for(user)
        .select_related("customer", "partner", "order_type", "company", "assignee", "created_by", "invoice")
        .annotate(
            open_tasks=Count("tasks", filter=Q(tasks__done_at__isnull=True)),
            all_tasks=Count("tasks"),
        )
        .prefetch_related(
            Prefetch(
                "documents",
                queryset=OrderDocument.objects.select_related(
                    "document_type", "current_file__uploaded_by", "reviewed_by"
                ),
            ),
            Prefetch("status_history", queryset=OrderStatusHistory.objects.select_related("actor")),
            Prefetch("invoice__allocations", queryset=Allocation.objects.select_related("payment", "credit_note")),
        )
    )
    return with_settlement_status(orders, user)


class OrderViewSet(OrderDeskView, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Orders the caller may see: list (with filters), create, read, change (PATCH) and move through the lifecycle.

    `base_charge` is null for callers who do not see an order's money beyond its fee (Operations)."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    required_permissions = {
        "GET": _by_order("view_order"),
        "POST": _by_order("add_order"),
        "PATCH": _by_order("change_order"),
    }

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        orders = selectors.order_list_for(self.request.user).select_related(
            "customer", "partner", "order_type", "company", "assignee"
        )
        return with_settlement_status(orders, self.request.user)

    def _detail(self, pk) -> dict:
        order = found(order_detail_queryset(self.request.user), pk)
        return OrderDetailSerializer(order, context={**self.get_serializer_context(), "order_pk": order.pk}).data

    @extend_schema(responses={200: OrderDetailSerializer, 404: error_response(NOT_YOURS)})
    def retrieve(self, request, pk=None):
        return Response(self._detail(pk))

    @extend_schema(
        summary="Create an order",
        description="Numbered, prefilled from its type (fee, base charge, due date), with a pending document per "
        "required document type; it waits in documents_pending straight away when the type requires any. 400 "
        "naming the field: an inactive type or customer, a company of another customer, a due date before the "
        "start. 403 naming `base_charge` when the caller does not see base charges.",
        request=OrderCreateSerializer,
        responses={201: OrderDetailSerializer},
    )
    @idempotent
    def create(self, request):
        data = _read(OrderCreateSerializer, request)
        _refuse_hidden_money(request.user, data)
        order = order_create(actor=request.user, **data)
        return Response(self._detail(order.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change an order's partner, company, fee, base charge, assignee, due date or description",
        description="A finished order's terms (fee, base charge, company, partner) no longer change.",
        request=OrderUpdateSerializer,
        responses={200: OrderDetailSerializer, 404: error_response(NOT_YOURS)},
    )
    @idempotent
    def partial_update(self, request, pk=None):
        order = self.visible_order(pk)
        data = _read(OrderUpdateSerializer, request)
        _refuse_hidden_money(request.user, data)
        order_update(actor=request.user, order=order, **data)
        return Response(self._detail(order.pk))

    @extend_schema(
        summary="Move the order to another status",
        description="started or documents_pending -> in_progress (refused while a required document is not "
        "accepted, with what is missing: `documents_missing`; an Admin may `override` with a reason), "
        "-> cancelled (with a reason); in_progress -> completed, or failed (with a reason); a finished order "
        "reopens only by an Admin, with a reason. Every move is a row of the order's timeline.",
        request=OrderTransitionSerializer,
        responses={
            200: OrderDetailSerializer,
            400: error_response(
                "`error.code`: `invalid_transition`, `documents_missing`, `reason_required`, `invalid`"
            ),
            403: error_response("`error.code`: `permission_denied` (reopening and overriding are an Admin's)"),
            404: error_response(NOT_YOURS),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"], required_permissions={"POST": _by_order("change_order")})
    @idempotent
    def transition(self, request, pk=None):
        order = self.visible_order(pk)
        data = _read(OrderTransitionSerializer, request)
        order_transition(actor=request.user, order=order, **data)
        return Response(self._detail(order.pk))

    @extend_schema(
        summary="Bill the order on a new draft invoice",
        description="For an order made without one (its fee and base charge were 0.00 then), or whose invoice was "
        "cancelled or voided: a draft of kind `order` with the fee (taxed per the customer's billing configuration) "
        "and the base charge (a disbursement, untaxed); issue it through the invoice API. A second invoice beside "
        "a live one is refused (`order_invoiced`), and so is an order with nothing to bill (`nothing_to_bill`).",
        request=None,
        responses={
            201: OrderDetailSerializer,
            400: error_response("`error.code`: `order_cancelled`"),
            409: error_response("`error.code`: `order_invoiced`, `nothing_to_bill`"),
            404: error_response(NOT_YOURS),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"], required_permissions={"POST": ["orders.view_order", "ledger.add_invoice"]})
    @idempotent
    def invoice(self, request, pk=None):
        order = self.visible_order(pk)
        order_invoice_create(actor=request.user, order=order)
        return Response(self._detail(order.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Give money back on the order with a credit note",
        description="A credit note on the order's issued invoice. With `amount` (tax included) it comes off the fee "
        "and its tax: a failed order's partial refund. Without it, the whole invoice is credited and becomes void. "
        "What was already paid stays with the customer as credit until a refund pays it out.",
        request=OrderCreditSerializer,
        responses={200: OrderDetailSerializer, 400: error_response("`error.code`: `not_invoiced`, `invalid`")},
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(
        detail=True, methods=["post"], required_permissions={"POST": ["orders.view_order", "ledger.add_creditnote"]}
    )
    @idempotent
    def credit(self, request, pk=None):
        order = self.visible_order(pk)
        data = _read(OrderCreditSerializer, request)
        order_credit(actor=request.user, order=order, **data)
        return Response(self._detail(order.pk))

    @extend_schema(
        summary="Calculate the order's partner settlement again (Finance)",
        description="From the order's invoice, credit notes, payments and expenses now. `changed` false: nothing "
        "changed and nothing was written (the message says why when no settlement is due: no partner, no agreement "
        "in force on the day the order ended, not ended yet). Otherwise `settlement` is the new one: a settlement "
        "not yet approved is replaced, an approved one is corrected by a new one; another Finance user approves it.",
        request=None,
        responses={200: SettleResultSerializer, 403: error_response("`error.code`: `permission_denied`")},
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(
        detail=True,
        methods=["post"],
        required_permissions={"POST": ["orders.view_order", "orders.view_settlement", "orders.add_settlement"]},
    )
    @idempotent
    def settle(self, request, pk=None):
        order = self.visible_order(pk)
        settlement = order_settle(actor=request.user, order=order)
        if settlement is not None:
            message = f"{settlement} calculated: {money(settlement.amount, settlement.currency)}."
            settlement = SettlementViewSet.represent(request, settlement.pk)
        else:
            explanation = settlement_explanation(order)
            message = explanation.reason if explanation else "Nothing changed: its settlements match its money."
        status_now = selectors.settlement_status_of(selectors.settlement_list_for(request.user).filter(order=order))
        return Response(
            {
                "changed": settlement is not None,
                "message": message,
                "settlement_status": status_now.value,
                "settlement": settlement,
            }
        )


# --- Documents --------------------------------------------------------------------------------------------------


class OrderDocumentsView(OrderDeskView, generics.ListAPIView):
    """GET: the order's documents checklist, each with its file history. POST (multipart/form-data): upload a file
    for a document type the order's type uses; the document becomes `received`."""

    serializer_class = OrderDocumentDetailSerializer
    filter_backends: list = []
    parser_classes = [UploadParser]
    required_permissions = {"GET": _by_order("view_orderdocument"), "POST": _by_order("change_orderdocument")}

    def get_queryset(self) -> QuerySet[OrderDocument]:
        if getattr(self, "swagger_fake_view", False):
            return OrderDocument.objects.none()
        order = self.visible_order(self.kwargs["order_pk"])
        return order.documents.select_related(
            "document_type", "current_file__uploaded_by", "reviewed_by"
        ).prefetch_related(Prefetch("files", queryset=OrderDocumentFile.objects.select_related("uploaded_by")))

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "order_pk": self.kwargs.get("order_pk")}

    @extend_schema(
        summary="Upload a file for one of the order's documents",
        description="The file's kind is read from its bytes (PDF, JPEG, PNG, TIFF) and must be one the document "
        "type accepts, within its maximum size; its extension must agree with the bytes; its name must be a plain "
        "file name (no path, no control characters, at most 120 characters). A refused file is not stored. A "
        "rejected document takes a new file; the old one stays in its history.",
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={
            201: OrderDocumentDetailSerializer,
            400: error_response(
                "`error.code`: `bad_file_name`, `empty_file`, `file_too_large`, `file_kind`, `file_extension`, "
                "`document_type_not_used`, `document_not_uploadable`, `order_closed`, `invalid`, `parse_error`"
            ),
            404: error_response(NOT_YOURS),
        },
    )
    @idempotent
    def post(self, request, order_pk):
        order = self.visible_order(order_pk)
        data = _read(DocumentUploadSerializer, request)
        with transaction.atomic():  # a refused file leaves no new placeholder either
            document = documents.document_for_type(actor=request.user, order=order, document_type=data["document_type"])
            document = documents.document_upload(actor=request.user, document=document, upload=data["file"])
        return Response(self._document(document.pk), status=status.HTTP_201_CREATED)

    def _document(self, pk) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=pk)).data


class OrderDocumentActionView(OrderDeskView, generics.GenericAPIView):
    serializer_class = OrderDocumentDetailSerializer
    filter_backends: list = []
    required_permissions = {"POST": _by_order("change_orderdocument")}

    def visible_document(self) -> OrderDocument:
        order = self.visible_order(self.kwargs["order_pk"])
        document = order.documents.filter(pk=self.kwargs["document_pk"]).first()
        if document is None:
            raise Http404("No document matches the given query.")
        document.order = order
        return document

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "order_pk": self.kwargs.get("order_pk")}

    def represent(self, document: OrderDocument) -> dict:
        document = (
            OrderDocument.objects.select_related("document_type", "current_file__uploaded_by", "reviewed_by")
            .prefetch_related(Prefetch("files", queryset=OrderDocumentFile.objects.select_related("uploaded_by")))
            .get(pk=document.pk)
        )
        return self.get_serializer(document).data


class OrderDocumentReviewView(OrderDocumentActionView):
    @extend_schema(
        summary="Accept a received or submitted document, or reject it with a reason the client sees",
        description="Accepting sets its expiry from the document type's validity. A rejection sends an order that "
        "was started back to waiting for documents.",
        request=DocumentReviewSerializer,
        responses={
            200: OrderDocumentDetailSerializer,
            400: error_response(
                "`error.code`: `invalid_document_status`, `reason_required`, `order_closed`, `invalid`"
            ),
            404: error_response(NOT_YOURS),
        },
    )
    @idempotent
    def post(self, request, order_pk, document_pk):
        document = self.visible_document()
        data = _read(DocumentReviewSerializer, request)
        document = documents.document_review(actor=request.user, document=document, **data)
        return Response(self.represent(document))


class OrderDocumentSubmitView(OrderDocumentActionView):
    @extend_schema(
        summary="Send a received document on for review",
        request=None,
        responses={
            200: OrderDocumentDetailSerializer,
            400: error_response("`error.code`: `invalid_document_status`, `order_closed`"),
            404: error_response(NOT_YOURS),
        },
    )
    @idempotent
    def post(self, request, order_pk, document_pk):
        document = documents.document_submit(actor=request.user, document=self.visible_document())
        return Response(self.represent(document))


class OrderDocumentDownloadView(OrderDeskView, generics.GenericAPIView):
    """One uploaded file of one of the order's documents, to those who may see the order (a portal user: their
    own customer's). Never a public media address."""

    filter_backends: list = []
    required_permissions = {"GET": _by_order("view_orderdocument")}

    @extend_schema(
        summary="Download an uploaded document file",
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file as an attachment, typed by its kind (PDF, JPEG, PNG, TIFF)."
            ),
            404: error_response(NOT_YOURS + "; `not_found` too when the file is missing from storage"),
        },
    )
    def get(self, request, order_pk, document_pk, file_pk):
        file = selectors.document_file_for(request.user, file_pk)
        if file is None or file.document_id != document_pk or file.document.order_id != order_pk:
            raise Http404("No file matches the given query.")
        try:
            handle = file.file.open("rb")
        except FileNotFoundError as error:
            raise Http404("The file is missing from storage.") from error
        content_type = FILE_KINDS[file.kind][0] if file.kind in FILE_KINDS else "application/octet-stream"
        return FileResponse(handle, as_attachment=True, filename=file.original_name, content_type=content_type)


# --- Tasks ------------------------------------------------------------------------------------------------------


class OrderTasksView(OrderDeskView, generics.ListAPIView):
    """The order's tasks, open ones first (by due date), then done ones; and a new task."""

    serializer_class = TaskSerializer
    filter_backends: list = []
    portal_reads = False
    required_permissions = {"GET": _by_order("view_task"), "POST": _by_order("add_task")}

    def get_queryset(self) -> QuerySet[Task]:
        if getattr(self, "swagger_fake_view", False):
            return Task.objects.none()
        order = self.visible_order(self.kwargs["order_pk"])
        return order.tasks.select_related("assignee", "done_by").order_by(
            F("done_at").asc(nulls_first=True), F("due_date").asc(nulls_last=True), "pk"
        )

    @extend_schema(
        summary="Add a task to the order",
        request=TaskCreateSerializer,
        responses={201: TaskSerializer, 404: error_response(NOT_YOURS)},
    )
    @idempotent
    def post(self, request, order_pk):
        order = self.visible_order(order_pk)
        task = tasks.task_create(actor=request.user, order=order, **_read(TaskCreateSerializer, request))
        return Response(self.get_serializer(task).data, status=status.HTTP_201_CREATED)


class OrderTaskView(OrderDeskView, generics.GenericAPIView):
    serializer_class = TaskSerializer
    filter_backends: list = []
    portal_reads = False
    required_permissions = {"GET": _by_order("view_task"), "PATCH": _by_order("change_task")}

    def visible_task(self) -> Task:
        order = self.visible_order(self.kwargs["order_pk"])
        task = order.tasks.select_related("assignee", "done_by").filter(pk=self.kwargs["task_pk"]).first()
        if task is None:
            raise Http404("No task matches the given query.")
        task.order = order
        return task

    def represent(self, task: Task) -> dict:
        return self.get_serializer(Task.objects.select_related("assignee", "done_by").get(pk=task.pk)).data

    @extend_schema(responses={200: TaskSerializer, 404: error_response(NOT_YOURS)})
    def get(self, request, order_pk, task_pk):
        return Response(self.get_serializer(self.visible_task()).data)

    @extend_schema(
        summary="Change a task's title, description, assignee, due date or priority",
        request=TaskUpdateSerializer,
        responses={200: TaskSerializer, 404: error_response(NOT_YOURS)},
    )
    @idempotent
    def patch(self, request, order_pk, task_pk):
        task = self.visible_task()
        task = tasks.task_update(actor=request.user, task=task, **_read(TaskUpdateSerializer, request))
        return Response(self.represent(task))


class OrderTaskCompleteView(OrderTaskView):
    required_permissions = {"POST": _by_order("change_task")}
    http_method_names = ["post", "options"]

    @extend_schema(
        summary="Mark the task done (again: changes nothing)",
        request=None,
        responses={200: TaskSerializer, 404: error_response(NOT_YOURS)},
    )
    @idempotent
    def post(self, request, order_pk, task_pk):
        return Response(self.represent(tasks.task_complete(actor=request.user, task=self.visible_task())))


class OrderTaskReopenView(OrderTaskView):
    required_permissions = {"POST": _by_order("change_task")}
    http_method_names = ["post", "options"]

    @extend_schema(
        summary="Mark the task not done",
        request=None,
        responses={200: TaskSerializer, 404: error_response(NOT_YOURS)},
    )
    @idempotent
    def post(self, request, order_pk, task_pk):
        return Response(self.represent(tasks.task_reopen(actor=request.user, task=self.visible_task())))


# --- Comments ---------------------------------------------------------------------------------------------------


class OrderCommentsView(OrderDeskView, generics.ListAPIView):
    """The order's comments, oldest first; append-only. POST as JSON, or as multipart/form-data with files in
    `attachments` (repeat the field for several)."""

    serializer_class = CommentSerializer
    filter_backends: list = []
    parser_classes = [JSONParser, UploadParser]
    portal_reads = False
    required_permissions = {"GET": _by_order("view_comment"), "POST": _by_order("add_comment")}

    def get_queryset(self) -> QuerySet[Comment]:
        if getattr(self, "swagger_fake_view", False):
            return Comment.objects.none()
        order = self.visible_order(self.kwargs["order_pk"])
        return order.comments.select_related("author").prefetch_related("attachments")

    @extend_schema(
        summary="Comment on the order",
        request={"application/json": CommentCreateSerializer, "multipart/form-data": CommentUploadSerializer},
        responses={
            201: CommentSerializer,
            400: error_response(
                "`error.code`: `invalid`, `bad_file_name`, `empty_file`, `file_too_large`, `file_kind`, "
                "`file_extension`, `parse_error`"
            ),
            404: error_response(NOT_YOURS),
        },
    )
    @idempotent
    def post(self, request, order_pk):
        order = self.visible_order(order_pk)
        if request.content_type.startswith("multipart/"):
            data = dict(_read(CommentUploadSerializer, request))
            data["attachments"] = request.FILES.getlist("attachments")
        else:
            data = _read(CommentCreateSerializer, request)
        comment = comments.comment_add(actor=request.user, order=order, **data)
        comment = Comment.objects.select_related("author").prefetch_related("attachments").get(pk=comment.pk)
        return Response(self.get_serializer(comment).data, status=status.HTTP_201_CREATED)


# --- Sharing ----------------------------------------------------------------------------------------------------


def order_grants_of(order: Order) -> QuerySet[OrderUserObjectPermission]:
    return (
        OrderUserObjectPermission.objects.filter(content_object=order, permission__codename=sharing.SHARED_PERMISSION)
        .select_related("user")
        .order_by("user__email")
    )


class OrderAccessView(OrderDeskView, generics.ListAPIView):
    """The staff users an order is shared with (beyond those whose role or customers let them see it), and sharing
    it with one more (Admin)."""

    serializer_class = UserRefSerializer
    filter_backends: list = []
    portal_reads = False
    required_permissions = {"GET": _by_order("share_order"), "POST": _by_order("share_order")}

    def get_queryset(self) -> QuerySet[User]:
        if getattr(self, "swagger_fake_view", False):
            return User.objects.none()
        order = self.visible_order(self.kwargs["order_pk"])
        return User.objects.filter(
            pk__in=order_grants_of(order).values("user_id"),
        ).order_by("email")

    @extend_schema(
        summary="Share the order with a staff user (again: changes nothing)",
        request=GrantSerializer,
        responses={201: UserRefSerializer, 404: error_response(NOT_YOURS)},
    )
    @idempotent
    def post(self, request, order_pk):
        order = self.visible_order(order_pk)
        user = _read(GrantSerializer, request)["user"]
        sharing.order_share(actor=request.user, order=order, user=user)
        return Response(UserRefSerializer(user).data, status=status.HTTP_201_CREATED)


class OrderAccessUserView(OrderDeskView, generics.GenericAPIView):
    serializer_class = UserRefSerializer
    filter_backends: list = []
    portal_reads = False
    required_permissions = {"DELETE": _by_order("share_order")}

    @extend_schema(
        summary="Take the order back from a user it was shared with",
        request=None,
        responses={204: None, 404: error_response(NOT_YOURS + "; or the order is not shared with that user")},
    )
    def delete(self, request, order_pk, user_pk):
        order = self.visible_order(order_pk)
        user = User.objects.filter(pk=user_pk).first()
        if user is None or not sharing.order_unshare(actor=request.user, order=order, user=user):
            raise Http404("The order is not shared with that user.")
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Reference data ---------------------------------------------------------------------------------------------


class ReferenceViewSet(OrderDeskView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    model: type

    @property
    def required_permissions(self) -> dict[str, list[str]]:
        name = self.model._meta.model_name
        return {"GET": [f"orders.view_{name}"], "POST": [f"orders.add_{name}"]}


class OrderTypeViewSet(ReferenceViewSet):
    """Order types, with the document types each requires or takes. `default_base_charge` is null for callers who
    do not see an order's money beyond its fee."""

    model = OrderType
    serializer_class = OrderTypeSerializer
    filterset_class = OrderTypeFilter
    queryset = OrderType.objects.prefetch_related(
        Prefetch("requirements", queryset=OrderTypeDocument.objects.select_related("document_type"))
    ).order_by("name", "pk")


class DocumentTypeViewSet(ReferenceViewSet):
    model = DocumentType
    serializer_class = DocumentTypeSerializer
    filterset_class = DocumentTypeFilter
    queryset = DocumentType.objects.order_by("name", "pk")


class RegistrarViewSet(ReferenceViewSet):
    model = Registrar
    serializer_class = RegistrarSerializer
    filterset_class = RegistrarFilter
    queryset = Registrar.objects.order_by("name", "pk")


class CompanyViewSet(ReferenceViewSet):
    """Companies of the customers the caller may see (a portal user: their own customer's, read-only); created by
    those whose role may."""

    model = Company
    serializer_class = CompanySerializer
    filterset_class = CompanyFilter

    def get_queryset(self) -> QuerySet[Company]:
        if getattr(self, "swagger_fake_view", False):
            return Company.objects.none()
        return (
            selectors.company_list_for(self.request.user).select_related("customer", "registrar").order_by("name", "pk")
        )

    @extend_schema(
        summary="Create a company for a customer",
        description="400 naming `registration_number` when the registrar already has a company with that number.",
        request=CompanySerializer,
        responses={201: CompanySerializer},
    )
    @idempotent
    def create(self, request):
        data = _read(CompanySerializer, request)
        company = Company(**data)
        company._history_user = request.user
        company.full_clean()
        company.save()
        return Response(CompanySerializer(company, context=self.get_serializer_context()).data, status=201)


# --- Revenue-share agreements -----------------------------------------------------------------------------------


class RevenueShareAgreementViewSet(
    OrderDeskView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Partners' revenue-share agreements: read by the roles that see partners and money, created and corrected by
    Finance and Admin. A new percentage from a day on ends one agreement (PATCH `valid_to`) and starts another."""

    serializer_class = RevenueShareAgreementSerializer
    filterset_class = RevenueShareAgreementFilter
    # JSON only: a form cannot send null, so its empty `valid_to` would be read as null against the schema's date.
    parser_classes = [JSONParser]
    portal_reads = False
    required_permissions = {
        "GET": ["orders.view_revenueshareagreement"],
        "POST": ["orders.add_revenueshareagreement"],
        "PATCH": ["orders.change_revenueshareagreement"],
    }

    def get_queryset(self) -> QuerySet[RevenueShareAgreement]:
        agreements = RevenueShareAgreement.objects.select_related("partner", "order_type")
        if getattr(self, "swagger_fake_view", False) or self.request.user.shared_only:
            return agreements.none()  # an outside account sees the orders shared with it, no partners' terms
        return agreements.order_by("partner__name", "order_type__code", "valid_from", "pk")

    @extend_schema(
        summary="Create a revenue-share agreement",
        description="400 naming `valid_from` (`error.code` `overlap`) when it overlaps an agreement of the same "
        "partner and order type (the general agreement, without a type, is a type of its own); 400 naming "
        "`valid_to` when it ends before it starts.",
        responses={201: RevenueShareAgreementSerializer},
    )
    @idempotent
    def create(self, request):
        data = _read(RevenueShareAgreementSerializer, request)
        agreement = revenue_share_agreement_create(actor=request.user, **data)
        return Response(RevenueShareAgreementSerializer(agreement).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Correct an agreement's percentage or validity",
        description="Its partner and order type stay. 400 naming `valid_from` (`overlap`) when the new period "
        "overlaps another agreement of the same partner and order type.",
        request=RevenueShareAgreementUpdateSerializer,
        responses={200: RevenueShareAgreementSerializer},
    )
    @idempotent
    def partial_update(self, request, pk=None):
        agreement = self.get_object()
        data = _read(RevenueShareAgreementUpdateSerializer, request)
        agreement = revenue_share_agreement_update(actor=request.user, agreement=agreement, **data)
        return Response(RevenueShareAgreementSerializer(agreement).data)


# --- Expenses ---------------------------------------------------------------------------------------------------

SEE_EXPENSES = ["orders.view_expense", "orders.view_order_money"]


class OrderExpenseView(OrderDeskView):
    """What the expense views share: expenses are the business's costs, seen by Finance and Admin only."""

    serializer_class = ExpenseSerializer
    filter_backends: list = []
    portal_reads = False

    def expenses_of(self, order: Order) -> QuerySet[Expense]:
        return (
            selectors.expense_list_for(self.request.user)
            .filter(order=order)
            .select_related("created_by", "reversed_by")
            .order_by("date", "pk")
        )

    def visible_expense(self) -> Expense:
        order = self.visible_order(self.kwargs["order_pk"])
        expense = self.expenses_of(order).filter(pk=self.kwargs["expense_pk"]).first()
        if expense is None:
            raise Http404("No expense matches the given query.")
        return expense

    def represent(self, expense: Expense, status_code: int = status.HTTP_200_OK) -> Response:
        expense = Expense.objects.select_related("created_by", "reversed_by").get(pk=expense.pk)
        return Response(self.get_serializer(expense).data, status=status_code)


class OrderExpensesView(OrderExpenseView, generics.ListAPIView):
    """GET: the order's expenses, oldest first, reversals among them. POST (JSON, or multipart/form-data with a
    `receipt` file): record an expense, posted to the ledger at once."""

    parser_classes = [JSONParser, UploadParser]
    required_permissions = {"GET": SEE_EXPENSES, "POST": _by_order("add_expense")}

    def get_queryset(self) -> QuerySet[Expense]:
        if getattr(self, "swagger_fake_view", False):
            return Expense.objects.none()
        return self.expenses_of(self.visible_order(self.kwargs["order_pk"]))

    @extend_schema(
        summary="Record an expense of the order",
        description="In the order's currency; posts `expense` to the ledger (the category's expense account to "
        "cash when paid, to the suppliers' payable when not). Never edited afterwards: reverse it instead. A "
        "refused expense stores nothing, its receipt neither.",
        request={"application/json": ExpenseCreateSerializer, "multipart/form-data": ExpenseUploadSerializer},
        responses={
            201: ExpenseSerializer,
            400: error_response(
                "`error.code`: `amount_not_positive`, `amount_precision`, `out_of_range`, `currency_mismatch`, "
                "`required`, `invalid_choice`, `bad_file_name`, `empty_file`, `file_too_large`, `file_kind`, "
                "`file_extension`, `invalid`, `parse_error`"
            ),
            404: error_response(NOT_YOURS),
        },
    )
    @idempotent
    def post(self, request, order_pk):
        order = self.visible_order(order_pk)
        if request.content_type.startswith("multipart/"):
            data = dict(_read(ExpenseUploadSerializer, request))
        else:
            data = _read(ExpenseCreateSerializer, request)
        expense = expenses.expense_record(actor=request.user, order=order, **data)
        return self.represent(expense, status.HTTP_201_CREATED)


class OrderExpenseReverseView(OrderExpenseView, generics.GenericAPIView):
    required_permissions = {"POST": _by_order("add_expense") + SEE_EXPENSES}

    @extend_schema(
        summary="Correct an expense by a reversing one",
        description="Records a reversing expense, dated today, whose amount is the original's negated, and posts "
        "the opposite entry. An expense is reversed once; a reversal is not reversed.",
        request=ExpenseReverseSerializer,
        responses={
            201: ExpenseSerializer,
            400: error_response("`error.code`: `already_reversed`, `expense_is_reversal`, `required`, `invalid`"),
            404: error_response(NOT_YOURS),
        },
    )
    @idempotent
    def post(self, request, order_pk, expense_pk):
        expense = self.visible_expense()
        reversal = expenses.expense_reverse(
            actor=request.user, expense=expense, **_read(ExpenseReverseSerializer, request)
        )
        return self.represent(reversal, status.HTTP_201_CREATED)


class OrderExpenseReceiptView(OrderExpenseView, generics.GenericAPIView):
    required_permissions = {"GET": SEE_EXPENSES}

    @extend_schema(
        summary="Download an expense's receipt",
        responses={
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The receipt (PDF, JPEG or PNG)."),
            404: error_response(NOT_YOURS + "; `not_found` too when the expense has no receipt"),
        },
    )
    def get(self, request, order_pk, expense_pk):
        expense = self.visible_expense()
        if not expense.receipt:
            raise Http404("The expense has no receipt.")
        try:
            handle = expense.receipt.open("rb")
        except FileNotFoundError as error:
            raise Http404("The receipt is missing from storage.") from error
        content_type = FILE_KINDS.get(expense.receipt_kind, ("application/octet-stream",))[0]
        return FileResponse(handle, as_attachment=True, filename=expense.receipt_name, content_type=content_type)


# --- Settlements ------------------------------------------------------------------------------------------------

NO_SUCH_SETTLEMENT = "`not_found` (no such settlement, or a caller who sees none: only Finance and Admin do)"


def _settlement_refusals(**codes: str) -> dict:
    statuses = {"bad_request": 400, "forbidden": 403, "not_found": 404, "conflict": 409}
    return {statuses[name]: error_response(f"`error.code`: {text}") for name, text in codes.items()}


class SettlementViewSet(OrderDeskView, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Partners' settlements (Finance and Admin): list with filters, one with its calculation and approval, and
    the approval's decisions, made through approvals (maker-checker: whoever's action calculated a settlement
    cannot approve it). Settlements are never edited."""

    serializer_class = SettlementSerializer
    filterset_class = SettlementFilter
    portal_reads = False
    required_permissions = {
        "GET": ["orders.view_settlement"],
        "POST": ["orders.view_settlement", "approvals.view_approvalrequest"],
    }

    def get_queryset(self) -> QuerySet[Settlement]:
        if getattr(self, "swagger_fake_view", False):
            return Settlement.objects.none()
        return (
            selectors.settlement_list_for(self.request.user)
            .select_related("order", "order__order_type", "partner", "calculated_by", "approved_by")
            .order_by("-calculated_at", "-pk")
        )

    def get_serializer_class(self):
        handler = self.action_map.get(self.request.method.lower(), self.action) if self.request else self.action
        return {"approve": ApprovalNoteSerializer, "reject": ApprovalReasonSerializer}.get(
            handler, SettlementSerializer
        )

    @staticmethod
    def represent(request, pk: int) -> dict:
        """The settlement as GET shows it (read again after a write), with its approval for the caller."""
        settlement = (
            selectors.settlement_list_for(request.user)
            .select_related("order", "order__order_type", "partner", "calculated_by", "approved_by")
            .get(pk=pk)
        )
        settlement.approval_state = approval_state_for(settlement, request.user)
        return SettlementDetailSerializer(settlement, context={"request": request}).data

    def visible_settlement(self, pk) -> Settlement:
        try:
            settlement = self.get_queryset().filter(pk=pk).first()
        except (TypeError, ValueError):
            settlement = None
        if settlement is None:
            raise Http404("No settlement matches the given query.")
        return settlement

    @staticmethod
    def _approval_request(settlement: Settlement) -> ApprovalRequest:
        approval = request_for(settlement)
        if approval is None:
            raise Conflict(
                f"{settlement} has no approval request open (it is {settlement.status}).", code="not_submitted"
            )
        return approval

    @extend_schema(responses={200: SettlementDetailSerializer, 404: error_response(NO_SUCH_SETTLEMENT)})
    def retrieve(self, request, pk=None):
        return Response(self.represent(request, self.visible_settlement(pk).pk))

    @extend_schema(
        summary="Approve the settlement (Finance, not whoever's action calculated it)",
        description="Posts `settlement`: the partner's share to its payable (the other way round for a negative "
        "correction). The settlement then waits for a payout batch.",
        request=ApprovalNoteSerializer,
        responses={
            200: SettlementDetailSerializer,
            **_settlement_refusals(
                forbidden="`permission_denied`, `own_submission` (maker-checker), `not_an_approver`, "
                "`already_approved`",
                not_found=NO_SUCH_SETTLEMENT,
                conflict="`already_decided`, `not_submitted` (void), `idempotency_key_reused`",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        settlement = self.visible_settlement(pk)
        data = _read(ApprovalNoteSerializer, request)
        approval_approve(actor=request.user, request=self._approval_request(settlement), comment=data["comment"])
        return Response(self.represent(request, settlement.pk))

    @extend_schema(
        summary="Reject the settlement, saying why (Finance, not whoever's action calculated it)",
        description="The settlement becomes void; once what was wrong is fixed, POST /api/orders/{id}/settle "
        "calculates a new one.",
        request=ApprovalReasonSerializer,
        responses={
            200: SettlementDetailSerializer,
            **_settlement_refusals(
                bad_request="`comment_required`",
                forbidden="`permission_denied`, `own_submission` (maker-checker), `not_an_approver`",
                not_found=NO_SUCH_SETTLEMENT,
                conflict="`already_decided`, `not_submitted` (void), `idempotency_key_reused`",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request, pk=None):
        settlement = self.visible_settlement(pk)
        data = _read(ApprovalReasonSerializer, request)
        approval_reject(actor=request.user, request=self._approval_request(settlement), comment=data["comment"])
        return Response(self.represent(request, settlement.pk))
