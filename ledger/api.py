"""Ledger API: invoices (also as bills) and their approval, payments, transactions, balances and statements.

Views validate input and call ledger services and selectors. Lists are scoped to what the caller may see (a
portal user: their own customer), so someone else's object answers 404; writes are for Finance and Admin, except
approvals, where the approvals service decides who may act under the customer's rule.
"""

import posixpath

from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.idempotency import IDEMPOTENCY_PARAMETERS, idempotent
from accounts.models import User
from accounts.permissions import RoleModelPermissions
from approvals.models import ApprovalAction, ApprovalRequest
from approvals.selectors import ApprovalState, approval_state_for
from approvals.services import (
    approval_approve,
    approval_reject,
    approval_reroute,
    approval_revert,
    approval_submit,
    request_for,
)
from billing_project.api_schema import error_response
from billing_project.errors import Conflict, DomainError
from billing_project.pagination import PAGE_DESCRIPTION, PAGE_SCHEMA, CursorPagination
from catalog.selectors import customer_list_for, sees_every_customer
from ledger import selectors
from ledger.einvoice import STORED
from ledger.filters import BalanceFilter, InvoiceFilter, PaymentFilter, TransactionFilter
from ledger.models import Account, Allocation, CreditNote, Invoice, InvoiceItem, Leg, Payment, Transaction
from ledger.quotes import price_quote
from ledger.serializers import (
    ApprovalNoteSerializer,
    ApprovalReasonSerializer,
    ApprovalRerouteSerializer,
    BalanceSerializer,
    CreditNoteCreateSerializer,
    CreditNoteSerializer,
    InvoiceDetailSerializer,
    InvoiceDraftCreateSerializer,
    InvoiceIssueSerializer,
    InvoiceSerializer,
    InvoiceSubmitResultSerializer,
    PaymentCreateSerializer,
    PaymentReallocateSerializer,
    PaymentSerializer,
    PriceQuoteQuerySerializer,
    PriceQuoteSerializer,
    StatementPageSerializer,
    TransactionSerializer,
)
from ledger.services.invoices import credit_note_issue, invoice_create_draft, invoice_issue
from ledger.services.payments import payment_reallocate, payment_record

# Reads of the journal for customers in the caller's scope: CS and Sales hold it, Operations does not.
VIEW_CUSTOMER_JOURNAL = ["ledger.view_transaction"]


class LedgerPermissions(RoleModelPermissions):
    """Role permissions of the view's model, or the ones a view or action names in `required_permissions`
    where the model's would be the wrong ones (issuing changes an invoice; a credit note is added)."""

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "required_permissions", None)
        if required is None:
            return super().has_permission(request, view)
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS and user.is_portal_user:
            return True
        return request.method == "OPTIONS" or user.has_perms(required)


class ApprovalPermissions(LedgerPermissions):
    """Approval actions need the permission to read invoices; the approvals service decides the rest (who submits,
    who approves under the customer's rule, maker-checker). A refusal here says so with `wrong_role`."""

    message = "Your role may not act on the approval of invoices."
    code = "wrong_role"


APPROVAL_ACTION = {
    "detail": True,
    "permission_classes": [permissions.IsAuthenticated, ApprovalPermissions],
    "required_permissions": ["ledger.view_invoice"],
}


def _refusals(**codes_by_status: str) -> dict[int, OpenApiResponse]:
    """Documented refusals of an approval action, in the one error format: {"error": {"code", ...}}."""
    statuses = {"bad_request": 400, "forbidden": 403, "not_found": 404, "conflict": 409}
    return {statuses[name]: error_response(f"`error.code`: {codes}") for name, codes in codes_by_status.items()}


NOT_YOURS = "`not_found` (not an invoice the caller may see: a CSM sees their own customers' invoices only)"


class LedgerViewSet(viewsets.GenericViewSet):
    """Role permissions and a queryset scoped to the caller, built by `scoped_queryset`; `model` serves the
    schema generator, which has no caller."""

    model: type
    permission_classes = [permissions.IsAuthenticated, LedgerPermissions]
    # Set per action through @action(required_permissions=...); None: the model's permission for the method.
    required_permissions: list[str] | None = None

    def get_queryset(self) -> QuerySet:
        # Built once per request: the permission check, the lookup and the list would each read the caller's
        # roles again. A clone each time, so nothing evaluated is shared.
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        if not hasattr(self, "_scoped_queryset"):
            self._scoped_queryset = self.scoped_queryset(self.request.user)
        return self._scoped_queryset.all()

    def scoped_queryset(self, user: User) -> QuerySet:
        raise NotImplementedError

    # Input serializers per action; outputs are named where they are sent.
    input_serializers: dict[str, type[serializers.Serializer]] = {}

    def get_serializer_class(self):
        # OPTIONS describes each method through the action "metadata": find the handler by method instead.
        handler = self.action_map.get(self.request.method.lower(), self.action) if self.request else self.action
        return self.input_serializers.get(handler, self.serializer_class)

    def validated_input(self, request) -> dict:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LedgerViewSet):
    """Invoices the caller may see, with their lines, credit notes, allocations and approval (detail).

    Served as /api/invoices and, for older clients, as /api/bills. A portal user sees their customer's issued
    invoices only, never drafts or bills awaiting approval, and never their approval history.
    """

    model = Invoice
    filterset_class = InvoiceFilter
    serializer_class = InvoiceDetailSerializer
    input_serializers = {
        "create": InvoiceDraftCreateSerializer,
        "issue": InvoiceIssueSerializer,
        "credit_notes": CreditNoteCreateSerializer,
        "submit": ApprovalNoteSerializer,
        "approve": ApprovalNoteSerializer,
        "reject": ApprovalReasonSerializer,
        "revert": ApprovalReasonSerializer,
        "reroute": ApprovalRerouteSerializer,
    }

    def scoped_queryset(self, user: User) -> QuerySet[Invoice]:
        invoices = selectors.invoice_list_for(user)
        if user.is_portal_user:
            invoices = invoices.filter(number__isnull=False)
        if self.action != "list":
            invoices = invoices.prefetch_related(
                Prefetch("items", queryset=InvoiceItem.objects.select_related("service")),
                "credit_notes",
                "allocations",
            )
        return invoices

    def get_serializer_class(self):
        return InvoiceSerializer if self.action == "list" else super().get_serializer_class()

    def _represent(self, invoice: Invoice) -> dict:
        user = self.request.user
        # Approvals are internal: a portal user sees none of them (nor of an issued invoice).
        invoice.approval_state = ApprovalState() if user.is_portal_user else approval_state_for(invoice, user)
        return InvoiceDetailSerializer(invoice, context=self.get_serializer_context()).data

    def _detail(self, invoice: Invoice) -> dict:
        """The invoice as GET shows it, read again after a write."""
        return self._represent(self.get_queryset().get(pk=invoice.pk))

    @staticmethod
    def _approval_request(invoice: Invoice) -> ApprovalRequest:
        approval = request_for(invoice)
        if approval is None:
            raise Conflict(f"Invoice {invoice} has not been submitted for approval.", code="not_submitted")
        return approval

    def retrieve(self, request, pk=None):
        return Response(self._represent(self.get_object()))

    @extend_schema(
        summary="Download a file attached to an action of the invoice's approval",
        parameters=[OpenApiParameter("action_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The file as an attachment, typed by its name (application/octet-stream when unknown).",
            ),
            404: error_response(
                "`error.code`: `not_found` (not an invoice the caller may see, or no "
                "such attachment on it; portal users never see approvals)"
            ),
        },
    )
    @action(detail=True, methods=["get"], url_path=r"approval-attachments/(?P<action_id>[0-9]+)")
    def approval_attachment(self, request, pk=None, action_id=None):
        if request.user.is_portal_user:  # approvals are internal
            raise Http404("No such attachment.")
        invoice = self.get_object()
        action = (
            ApprovalAction.objects.filter(
                request__target_type=ContentType.objects.get_for_model(Invoice),
                request__target_id=invoice.pk,
                pk=action_id,
            )
            .exclude(attachment="")
            .first()
        )
        if action is None:
            raise Http404("No such attachment.")
        try:
            file = action.attachment.open("rb")
        except FileNotFoundError as error:
            raise Http404("The attachment is missing from storage.") from error
        return FileResponse(file, as_attachment=True, filename=posixpath.basename(action.attachment.name))

    @extend_schema(
        summary="Download the invoice's e-invoice",
        description="The EN 16931 e-invoice made once when the invoice was issued, for customers who receive "
        "e-invoices (both syntaxes are made for them, whichever they chose to be emailed). `syntax=ubl` (the "
        "default): UBL 2.1 XML following Peppol BIS Billing 3.0, with the PDF embedded. `syntax=cii`: the Factur-X "
        "PDF (EN 16931 profile), the invoice's PDF as PDF/A-3 with the UN/CEFACT CII XML embedded as `factur-x.xml`; "
        "a Factur-X reader (or any PDF tool that lists attachments) takes the XML out of it.",
        parameters=[OpenApiParameter("syntax", OpenApiTypes.STR, enum=list(STORED), required=False)],
        responses={
            (200, "application/xml"): OpenApiResponse(OpenApiTypes.BINARY, description="`syntax=ubl`: the UBL."),
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="`syntax=cii`: the Factur-X PDF with the CII XML inside."
            ),
            400: error_response("`error.code`: `invalid` (a syntax other than `ubl` or `cii`)"),
            404: error_response(f"{NOT_YOURS}, or no e-invoice: not issued, or its customer receives PDFs only"),
        },
    )
    @action(detail=True, methods=["get"], url_path="einvoice")
    def einvoice(self, request, pk=None):
        syntax = request.query_params.get("syntax", "ubl")
        if syntax not in STORED:
            raise DomainError(
                f"No e-invoice syntax {syntax!r}.", fields={"syntax": [f"Give one of: {', '.join(STORED)}."]}
            )
        invoice = self.get_object()
        stored = STORED[syntax]
        file = stored.file_of(invoice)
        if file is None:
            raise Http404("This invoice has no e-invoice.")
        try:
            opened = file.open("rb")
        except FileNotFoundError as error:
            raise Http404("The e-invoice is missing from storage.") from error
        return FileResponse(
            opened, as_attachment=True, filename=stored.file_name(invoice), content_type=stored.content_type
        )

    @extend_schema(
        summary="Create the usage invoice of a customer and month as a draft",
        description="Rated from the usage so far. 409 `invoice_exists` when the month already has a usage invoice; "
        "409 `nothing_to_bill` when it would be 0.00 (no fee, all usage within the allowance) and the customer's "
        "billing configuration does not ask for a 0.00 invoice (`send_zero_invoices`).",
        request=InvoiceDraftCreateSerializer,
        responses={
            201: InvoiceDetailSerializer,
            409: error_response("`error.code`: `invoice_exists`, `nothing_to_bill`, `idempotency_key_reused`"),
        },
    )
    @idempotent
    def create(self, request):
        invoice = invoice_create_draft(actor=request.user, **self.validated_input(request))
        return Response(self._detail(invoice), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Issue a draft or approved invoice",
        description="Gives the number, posts the charge, sets customer credit against it and emails the PDF. "
        "Issuing an issued invoice again changes nothing.",
        request=InvoiceIssueSerializer,
        responses={
            200: InvoiceDetailSerializer,
            409: error_response(
                "`error.code`: `invoice_not_editable` (not a draft or approved invoice), `approval_required`, "
                "`idempotency_key_reused`"
            ),
        },
        # @action replaces the schema that @idempotent attaches, and with it the header: named here again.
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"], required_permissions=["ledger.change_invoice"])
    @idempotent
    def issue(self, request, pk=None):
        data = self.validated_input(request)
        invoice = invoice_issue(actor=request.user, invoice=self.get_object(), send=data["send"])
        return Response(self._detail(invoice))

    @extend_schema(
        summary="Credit an issued invoice in full or in part",
        description="Without `amount` the whole invoice is credited and becomes void. What exceeds the amount "
        "still owed stays with the customer as credit.",
        request=CreditNoteCreateSerializer,
        responses={
            201: CreditNoteSerializer,
            409: error_response("`error.code`: `invoice_not_editable` (not issued), `idempotency_key_reused`"),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"], url_path="credit-notes", required_permissions=["ledger.add_creditnote"])
    @idempotent
    def credit_notes(self, request, pk=None):
        data = self.validated_input(request)
        note = credit_note_issue(
            actor=request.user, invoice=self.get_object(), reason=data["reason"], amount=data.get("amount")
        )
        note = CreditNote.objects.select_related("invoice").get(pk=note.pk)
        return Response(CreditNoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Submit a draft or rejected invoice for approval (Finance)",
        description="The customer's rule, frozen now, decides who approves; they are emailed. "
        "`approval_required` false: the rule needs no approval and the draft can be issued as it is.",
        request=ApprovalNoteSerializer,
        responses={
            200: InvoiceSubmitResultSerializer,
            **_refusals(
                forbidden="`wrong_role` (only Finance submits)",
                not_found=NOT_YOURS,
                conflict="`already_submitted`, `not_submittable` (not a draft or rejected invoice), `no_approver` "
                "(nobody can give an approval its rule needs; the message says what to fix), `idempotency_key_reused`",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(methods=["post"], **APPROVAL_ACTION)
    @idempotent
    def submit(self, request, pk=None):
        data = self.validated_input(request)
        invoice = self.get_object()
        approval = approval_submit(actor=request.user, target=invoice, comment=data["comment"])
        message = (
            "Submitted for approval; its approvers were emailed."
            if approval
            else "No approval is needed under the customer's rule."
        )
        result = {"approval_required": approval is not None, "message": message, "invoice": self._detail(invoice)}
        return Response(result)

    @extend_schema(
        summary="Approve the invoice's pending request (Customer Success, Sales)",
        description="Gives the first open step of the rule that the caller may approve; once every step is approved "
        "the invoice is approved (and issued, when the customer's billing is set to issue automatically).",
        request=ApprovalNoteSerializer,
        responses={
            200: InvoiceDetailSerializer,
            **_refusals(
                forbidden="`wrong_role`, `own_submission`, `not_an_approver`, `already_approved`",
                not_found=NOT_YOURS,
                conflict="`already_decided`, `not_submitted`, `idempotency_key_reused`",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(methods=["patch"], **APPROVAL_ACTION)
    @idempotent
    def approve(self, request, pk=None):
        data = self.validated_input(request)
        invoice = self.get_object()
        approval_approve(actor=request.user, request=self._approval_request(invoice), comment=data["comment"])
        return Response(self._detail(invoice))

    @extend_schema(
        summary="Reject the invoice's pending request, saying why (Customer Success, Sales)",
        description="The invoice goes back to Finance as rejected; once corrected it is submitted again.",
        request=ApprovalReasonSerializer,
        responses={
            200: InvoiceDetailSerializer,
            **_refusals(
                bad_request="`comment_required`",
                forbidden="`wrong_role`, `own_submission`, `not_an_approver`",
                not_found=NOT_YOURS,
                conflict="`already_decided`, `not_submitted`, `idempotency_key_reused`",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(methods=["patch"], **APPROVAL_ACTION)
    @idempotent
    def reject(self, request, pk=None):
        data = self.validated_input(request)
        invoice = self.get_object()
        approval_reject(actor=request.user, request=self._approval_request(invoice), comment=data["comment"])
        return Response(self._detail(invoice))

    @extend_schema(
        summary="Take back the latest approval or rejection, saying why; the request reopens",
        description="Only who made the decision (or a superuser) reverts it, and only before the invoice is issued.",
        request=ApprovalReasonSerializer,
        responses={
            200: InvoiceDetailSerializer,
            **_refusals(
                bad_request="`comment_required`",
                forbidden="`wrong_role`, `not_your_decision`",
                not_found=NOT_YOURS,
                conflict="`already_issued`, `nothing_to_revert`, `not_submitted`, `idempotency_key_reused`",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(methods=["patch"], **APPROVAL_ACTION)
    @idempotent
    def revert(self, request, pk=None):
        data = self.validated_input(request)
        invoice = self.get_object()
        approval_revert(actor=request.user, request=self._approval_request(invoice), comment=data["comment"])
        return Response(self._detail(invoice))

    @extend_schema(
        summary="Re-route the invoice's pending request to another rule or approver, saying why (Admin)",
        description="For a request nobody can finish (its CSM left, say): `route` is one of "
        "`approval_allowed.reroute_routes`. The re-route is kept in the history with the old and the new rule; "
        "approvals given for steps the new rule keeps still count, the new approvers are emailed.",
        request=ApprovalRerouteSerializer,
        responses={
            200: InvoiceDetailSerializer,
            **_refusals(
                bad_request="`comment_required`, `unknown_route` (not a route it can take now), `invalid`",
                forbidden="`wrong_role` (only an Admin re-routes)",
                not_found=NOT_YOURS,
                conflict="`already_decided`, `not_submitted`, `no_approver`",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(methods=["post"], **APPROVAL_ACTION)
    @idempotent
    def reroute(self, request, pk=None):
        data = self.validated_input(request)
        invoice = self.get_object()
        approval_reroute(
            actor=request.user,
            request=self._approval_request(invoice),
            route=data["route"],
            comment=data["comment"],
        )
        return Response(self._detail(invoice))


class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LedgerViewSet):
    """Payments the caller may see, each with the invoices it was set against."""

    model = Payment
    filterset_class = PaymentFilter
    serializer_class = PaymentSerializer
    input_serializers = {"create": PaymentCreateSerializer, "allocations": PaymentReallocateSerializer}

    def scoped_queryset(self, user: User) -> QuerySet[Payment]:
        return selectors.payment_list_for(user).prefetch_related(
            Prefetch("allocations", queryset=Allocation.objects.select_related("invoice"))
        )

    def _represent(self, payment: Payment) -> dict:
        """The payment as GET shows it, read again after a write."""
        return PaymentSerializer(self.get_queryset().get(pk=payment.pk)).data

    @extend_schema(
        summary="Record a received payment",
        description="Posted to the journal and set against the `invoice` it names, if any, then against the "
        "oldest open invoices; any excess stays as credit. 400 naming `invoice` when that invoice is another "
        "customer's, not open (a draft, paid, void or cancelled) or in another currency; 409 `duplicate_payment` "
        "when the bank reference is already booked for the customer.",
        request=PaymentCreateSerializer,
        responses={
            201: PaymentSerializer,
            **_refusals(
                bad_request="`invalid` (a field, named in `error.fields`), `invoice_not_open`, `currency_mismatch`",
                conflict="`duplicate_payment`, `idempotency_key_reused`",
            ),
        },
    )
    @idempotent
    def create(self, request):
        payment = payment_record(actor=request.user, **self.validated_input(request))
        return Response(self._represent(payment), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Set a payment's money against a chosen open invoice of its customer (Finance, Admin)",
        description="Moves the payment's unallocated part, or with `from_invoice` what it had set against that "
        "invoice (e.g. one it was wrongly allocated to), onto `invoice`; each invoice's status follows. "
        "Allocations are never changed: the move adds a negative allocation on the invoice left and a new one on "
        "`invoice`. The journal does not move (the customer's account already holds the payment).",
        request=PaymentReallocateSerializer,
        responses={
            201: PaymentSerializer,
            **_refusals(
                bad_request="`invalid` (a field, named in `error.fields`), `invoice_not_open`, `currency_mismatch`, "
                "`nothing_to_move`",
                forbidden="`permission_denied` (only Finance and Admin move payments)",
                not_found="`not_found` (not a payment the caller may see)",
            ),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"], url_path="allocations", required_permissions=["ledger.add_allocation"])
    @idempotent
    def allocations(self, request, pk=None):
        data = self.validated_input(request)
        payment = self.get_object()
        payment_reallocate(actor=request.user, payment=payment, **data)
        return Response(self._represent(payment), status=status.HTTP_201_CREATED)


class TransactionPagination(CursorPagination):
    """The journal grows without end: page by a cursor, no COUNT(*)."""

    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 500


def _sees_whole_chart(user: User) -> bool:
    """As selectors.transaction_list_for decides who sees transactions of no customer."""
    return sees_every_customer(user) and (user.is_superuser or user.has_perm("ledger.view_account"))


class TransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LedgerViewSet):
    """Journal transactions the caller may see, with their legs. Read-only: a mistake is corrected by a
    reversing transaction, never by an edit."""

    filterset_class = TransactionFilter
    serializer_class = TransactionSerializer
    pagination_class = TransactionPagination
    model = Transaction

    def scoped_queryset(self, user: User) -> QuerySet[Transaction]:
        legs = Leg.objects.select_related("account")
        if not _sees_whole_chart(user):
            # Revenue, tax and cash balances are the business's own: show only the customers' side.
            legs = legs.filter(account__kind=Account.Kind.RECEIVABLE, account__customer__in=customer_list_for(user))
        return (
            selectors.transaction_list_for(user)
            .select_related("customer")
            .prefetch_related(Prefetch("legs", queryset=legs))
        )


class BalanceViewSet(mixins.ListModelMixin, LedgerViewSet):
    """Customers' balances, from their receivable accounts: positive, the customer owes; negative, it holds
    credit. A customer appears once something was posted for it."""

    filterset_class = BalanceFilter
    serializer_class = BalanceSerializer
    required_permissions = VIEW_CUSTOMER_JOURNAL
    model = Account

    def scoped_queryset(self, user: User) -> QuerySet[Account]:
        return selectors.receivable_accounts_for(user).order_by("customer__client_id", "id")


class CustomerStatementView(generics.GenericAPIView):
    """A customer's statement: date, kind, reference, description, amount and balance after of every movement
    on its receivable account, oldest first, a page at a time (?page=, as the other lists). A customer the
    caller may not see answers 404."""

    permission_classes = [permissions.IsAuthenticated, LedgerPermissions]
    required_permissions = VIEW_CUSTOMER_JOURNAL
    serializer_class = StatementPageSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("page", PAGE_SCHEMA, description=PAGE_DESCRIPTION)])
    def get(self, request, pk: int):
        customer = get_object_or_404(customer_list_for(request.user), pk=pk)
        statement = selectors.customer_statement(customer)  # the balance and the count in one query
        lines = self.paginate_queryset(statement)  # then the page's lines, in one more
        page = {
            "count": self.paginator.page.paginator.count,
            "next": self.paginator.get_next_link(),
            "previous": self.paginator.get_previous_link(),
            "customer": customer,
            "balance": statement.balance,
            "opening_balance": lines[0].balance_before if lines else None,
            "lines": lines,
        }
        return Response(StatementPageSerializer(page).data)


class PriceQuoteView(generics.GenericAPIView):
    """The price calculator: the lines and totals a quantity of one service would bill a customer in a month,
    rated by the agreement in force as month-end rates it and taxed as the invoice would be. Writes nothing.
    A customer the caller may not see, or a month without an agreement, is a 400 naming the field."""

    permission_classes = [permissions.IsAuthenticated, LedgerPermissions]
    required_permissions = ["catalog.view_priceagreement"]
    serializer_class = PriceQuoteSerializer
    filter_backends: list = []

    @extend_schema(
        parameters=[PriceQuoteQuerySerializer],
        responses={
            200: PriceQuoteSerializer,
            400: error_response("A parameter is missing or wrong, or the customer has no price for the service then."),
        },
    )
    def get(self, request):
        query = PriceQuoteQuerySerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        fields = query.validated_data
        quote = price_quote(
            customer=fields["customer"], service=fields["service"], period=fields["month"], quantity=fields["quantity"]
        )
        return Response(PriceQuoteSerializer(quote).data)
