"""CSV formula injection (OWASP CSV Injection): text cells of the re-invoicing export."""

import csv
import io
from decimal import Decimal

import pytest

from licensing.invoicing import Line
from models.enums import LicenseType
from resolvers.exports import export_row, spreadsheet_text


@pytest.mark.parametrize("hostile", ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1:A9)",
                                     "\t=1+1", "\r=1+1"])
def test_a_cell_that_would_start_a_formula_gets_a_leading_quote(hostile: str) -> None:
    assert spreadsheet_text(hostile) == "'" + hostile


@pytest.mark.parametrize("harmless", ["", "Acme AB", "K-1", "'already quoted", " =1+1", "a=b", "Acme, \"Q\"\nx"])
def test_other_text_is_kept_as_it_is(harmless: str) -> None:
    assert spreadsheet_text(harmless) == harmless


def test_numbers_stay_numbers_and_text_is_escaped_in_a_row() -> None:
    # A credit note's negative amounts must stay numbers a spreadsheet can add up.
    credit = Line(1, "=evil()", "-7", "@credit", LicenseType.NAMED, -2, Decimal("149.00"), Decimal(0),
                  Decimal("-149.00"), Decimal("-298.00"))
    row = export_row(credit, "=evil()", "SEK")
    assert row == ["'-7", "'=evil()", "NAMED", "'@credit", "-2", "-149.00", "-298.00", "SEK"]
    out = io.StringIO()
    csv.writer(out).writerow(export_row(credit, 'Acme, "Q"\n2', "SEK"))
    assert next(csv.reader(io.StringIO(out.getvalue())))[1] == 'Acme, "Q"\n2'
