import pytest

from portal.domains.names import DomainNameError, normalize, to_unicode


@pytest.mark.parametrize("raw, expected", [
    ("Example.ORG", "example.org"),
    ("  example.org. ", "example.org"),
    ("Bücher.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("ＥＸＡＭＰＬＥ.org", "example.org"),
    ("mail.sub.example.co.uk", "mail.sub.example.co.uk"),
])
def test_normalize__gives_lower_case_a_labels(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw, message", [
    ("", "Enter a domain name"),
    ("localhost", "at least two parts"),
    ("user@example.org", "just the domain name"),
    ("https://example.org/", "just the domain name"),
    ("-bad.example.org", "not a valid"),
    ("a" * 64 + ".org", "63 characters"),
    (("abcdefghi." * 26) + "org", "253 characters"),
    ("exa mple.org", "just the domain name"),
    ("10.0.0.1", "IP address"),
    ("ex_ample.org", "not a valid"),
    ("\u200d.example", "not a valid"),
])
def test_normalize__refuses_with_a_reason(raw, message):
    with pytest.raises(DomainNameError, match=message):
        normalize(raw)


def test_to_unicode__shows_internationalised_names():
    assert to_unicode("xn--bcher-kva.example") == "bücher.example"
