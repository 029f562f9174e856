"""PostgreSQL keeps the journal's invariants even against raw SQL (DESIGN.md, "The ledger").

- a deferred constraint trigger refuses, at commit, a transaction whose legs do not balance or that
  has fewer than two legs;
- legs and transactions can be neither updated nor deleted.
- an invoice's and a credit note's total is its subtotal plus tax, and an invoice is never paid beyond
  what is owed on it (check constraints here: SQLite compares decimals as floating point).
Check constraints (migration 0001) refuse zero and negative leg amounts on every database.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION ledger_assert_balanced(txn_id bigint) RETURNS void AS $$
DECLARE
    leg_count integer;
    debits numeric;
    credits numeric;
BEGIN
    SELECT count(*), coalesce(sum(debit), 0), coalesce(sum(credit), 0)
      INTO leg_count, debits, credits
      FROM ledger_leg WHERE transaction_id = txn_id;
    IF leg_count < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % leg(s); at least two are needed', txn_id, leg_count
            USING ERRCODE = 'check_violation';
    END IF;
    IF debits <> credits THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: debits %, credits %', txn_id, debits, credits
            USING ERRCODE = 'check_violation';
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION ledger_leg_check_balanced() RETURNS trigger AS $$
BEGIN
    PERFORM ledger_assert_balanced(NEW.transaction_id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION ledger_transaction_check_balanced() RETURNS trigger AS $$
BEGIN
    PERFORM ledger_assert_balanced(NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_leg_balanced
    AFTER INSERT ON ledger_leg DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_leg_check_balanced();

CREATE CONSTRAINT TRIGGER ledger_transaction_balanced
    AFTER INSERT ON ledger_transaction DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_check_balanced();

CREATE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are never updated or deleted; post a reversing transaction', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_leg_append_only BEFORE UPDATE OR DELETE ON ledger_leg
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

ALTER TABLE ledger_invoice ADD CONSTRAINT invoice_total_is_sum CHECK (total = subtotal + tax);
ALTER TABLE ledger_invoice ADD CONSTRAINT invoice_not_overpaid
    CHECK (total < 0 OR amount_paid <= total - amount_credited);
ALTER TABLE ledger_creditnote ADD CONSTRAINT credit_note_total_is_sum CHECK (total = subtotal + tax);
"""

BACKWARD = """
ALTER TABLE ledger_creditnote DROP CONSTRAINT IF EXISTS credit_note_total_is_sum;
ALTER TABLE ledger_invoice DROP CONSTRAINT IF EXISTS invoice_not_overpaid;
ALTER TABLE ledger_invoice DROP CONSTRAINT IF EXISTS invoice_total_is_sum;
DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_leg_append_only ON ledger_leg;
DROP FUNCTION IF EXISTS ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_leg_balanced ON ledger_leg;
DROP FUNCTION IF EXISTS ledger_transaction_check_balanced();
DROP FUNCTION IF EXISTS ledger_leg_check_balanced();
DROP FUNCTION IF EXISTS ledger_assert_balanced(bigint);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
