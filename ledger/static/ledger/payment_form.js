"use strict";
// The payment form (ledger.forms.PaymentForm): the invoice list follows the customer chosen, and choosing an
// invoice fills an empty amount with what it still owes. The customer box is select2, which announces a new
// choice through jQuery only, so that is what is listened to.
window.addEventListener("load", function () {
  const jQuery = window.django && window.django.jQuery;
  const customer = document.getElementById("id_customer");
  const invoice = document.getElementById("id_invoice");
  const amount = document.getElementById("id_amount");
  if (!jQuery || !customer || !invoice) {
    return;
  }
  const noInvoice = invoice.options.length ? invoice.options[0].text : "";

  function showInvoices(rows) {
    invoice.replaceChildren(new Option(noInvoice, ""));
    rows.forEach(function (row) {
      const option = new Option(row.label, row.id);
      option.dataset.outstanding = row.outstanding;
      invoice.add(option);
    });
  }

  jQuery(customer).on("change", function () {
    showInvoices([]);
    if (!customer.value) {
      return;
    }
    const asked = customer.value;
    const url = new URL(invoice.dataset.openInvoicesUrl, window.location.href);
    url.searchParams.set("customer", asked);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : { invoices: [] };
      })
      .then(function (body) {
        if (customer.value === asked) {  // not an answer overtaken by another choice
          showInvoices(body.invoices);
        }
      });
  });

  invoice.addEventListener("change", function () {
    const chosen = invoice.selectedOptions[0];
    if (amount && !amount.value && chosen && chosen.dataset.outstanding) {
      amount.value = chosen.dataset.outstanding;
    }
  });
});
