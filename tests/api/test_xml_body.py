"""XML bodies (``Format=XML``) as Alibaba Cloud writes them, and reading ``Format`` from raw request text."""

from __future__ import annotations

from xml.etree import ElementTree

from hypothesis import given
from hypothesis import strategies as st

from controller.api.eais_responses import ResponseFormat, requested_format
from controller.api.xml_body import xml_document

XML, JSON = ResponseFormat.XML, ResponseFormat.JSON
names = st.from_regex(r"[A-Z][A-Za-z]{0,15}", fullmatch=True)
scalars = st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none())
bodies = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=4)),
                      max_leaves=12)


def test_describe_eais_nests_lists_as_repeated_elements():
    body = {"RequestId": "r-1", "TotalCount": 2, "Instances": {"Instance": [
        {"ElasticAcceleratedInstanceId": "eais-1", "Tags": {"Tag": [{"TagKey": "team", "TagValue": "a&b"}]}},
        {"ElasticAcceleratedInstanceId": "eais-2", "Tags": {"Tag": []}},
    ]}}

    root = ElementTree.fromstring(xml_document("DescribeEaisResponse", body))

    assert root.tag == "DescribeEaisResponse"
    assert [e.text for e in root.iter("ElasticAcceleratedInstanceId")] == ["eais-1", "eais-2"]
    assert root.findtext("Instances/Instance/Tags/Tag/TagValue") == "a&b"
    assert root.findtext("TotalCount") == "2" and root.findtext("RequestId") == "r-1"


def test_a_top_level_list_repeats_its_element_under_the_root():
    body = {"TagResources": [{"ResourceId": "eais-1"}, {"ResourceId": "eais-2"}], "NextToken": None, "Force": True}

    root = ElementTree.fromstring(xml_document("ListTagResourcesResponse", body))

    assert [e.findtext("ResourceId") for e in root.findall("TagResources")] == ["eais-1", "eais-2"]
    assert root.find("NextToken").text is None and root.findtext("Force") == "true"


def items(value: object) -> list[object]:
    return [x for v in value for x in items(v)] if isinstance(value, list) else [value]


@given(body=st.dictionaries(names, bodies, max_size=5))
def test_any_body_gives_a_well_formed_document_with_every_top_level_field(body):
    root = ElementTree.fromstring(xml_document("SomeActionResponse", body))

    present = {child.tag for child in root}
    assert present == {name for name, value in body.items() if items(value)}  # an empty list writes nothing


def xml_can_carry(char: str) -> bool:
    return char in "\t\n\r" or "\x20" <= char <= "\ud7ff" or "\ue000" <= char <= "\ufffd" or char >= "\U00010000"


@given(text=st.text())
def test_text_keeps_every_character_xml_can_carry_and_drops_the_others(text):
    root = ElementTree.fromstring(xml_document("Error", {"Message": text}))

    kept = "".join(c for c in text if xml_can_carry(c))
    assert (root.findtext("Message") or "") == kept.replace("\r\n", "\n").replace("\r", "\n")  # XML's line ends


def test_format_xml_is_read_in_any_case_from_the_query_or_a_form_body():
    assert requested_format(b"Action=DescribeEais&Format=XML") is XML
    assert requested_format(b"Format=xml") is XML
    assert requested_format(b"A=1&Format=%78mL&B=2") is XML
    assert requested_format(b"", b"Format=Xml&Action=DescribeEais") is XML


def test_json_is_the_default_and_answers_any_other_format():
    assert requested_format(b"") is JSON
    assert requested_format(b"Format=JSON") is JSON
    assert requested_format(b"Format=yaml") is JSON
    assert requested_format(b"XFormat=XML&MyFormat=XML") is JSON
    assert requested_format(b"Format=json", b"Format=XML") is JSON  # the query rules, as in the signature


@given(query=st.binary(max_size=200), body=st.binary(max_size=200))
def test_reading_format_never_fails_on_any_bytes(query, body):
    assert requested_format(query, body) in (XML, JSON)
