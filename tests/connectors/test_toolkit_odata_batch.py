"""The toolkit's OData $batch bodies: parts and changesets, both directions."""

from __future__ import annotations

import pytest

from crm2erp.connectors.toolkit import odata_batch as batch


def test_a_batch_request_and_its_answer_round_trip_with_a_failed_changeset_as_one_part():
    ops = [batch.Message("POST", "A_X", headers={"Content-Type": "application/json"},
                         body=b'{"a": 1}'),
           batch.Message("DELETE", "A_X('2')", headers={"If-Match": 'W/"3"'})]
    body, content_type = batch.encode([ops, batch.Message("GET", "A_X?$top=1")])
    assert content_type.startswith("multipart/mixed; boundary=batch_")
    [changeset, read] = batch.decode(body, content_type)
    assert [(m.method, m.target, m.body) for m in changeset] == [
        ("POST", "A_X", b'{"a": 1}'), ("DELETE", "A_X('2')", b"")]
    assert changeset[1].header("if-match") == 'W/"3"' and read.target == "A_X?$top=1"
    # the answer: a changeset that failed is one plain error response, not a multipart
    answer, answer_type = batch.encode(
        [batch.Message(status=412, body=b'{"error": {}}'),
         [batch.Message(status=201, body=b'{"d": {}}')]], prefix="batchresponse")
    [failed, [created]] = batch.decode(answer.replace(b"\r\n", b"\n"), answer_type)
    assert (failed.status, failed.ok, failed.body) == (412, False, b'{"error": {}}')
    assert (created.status, created.ok) == (201, True)


def test_a_cut_body_or_a_missing_boundary_is_a_value_error():
    body, content_type = batch.encode([[batch.Message("POST", "A_X", body=b"{}")]])
    with pytest.raises(ValueError, match="closing delimiter"):
        batch.decode(body[: len(body) // 2], content_type)
    with pytest.raises(ValueError, match="without boundary"):
        batch.decode(body, "multipart/mixed")
