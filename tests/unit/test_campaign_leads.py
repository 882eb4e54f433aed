"""Lead files: validation, E.164, time zones, duplicates, row numbers (cc_ari/campaigns/leads.py)."""

from __future__ import annotations

from cc_ari.campaigns.leads import Duplicate, RowError, parse_leads


def test_a_good_file_gives_e164_numbers_zones_and_custom_fields() -> None:
    text = ("phone,id,name,timezone\n"
            "+1 212 555 0100,a1,Ann,\n"
            "(202) 555-0123,,Bob,\n"
            "+33 1 23 45 67 89,c3,Céline,Europe/Paris\n"
            "+1 555 555 0100,d4,Fictional,\n")
    f = parse_leads(text)
    assert f.ok and f.duplicates == []
    assert [(lead.line, lead.lead_id, lead.phone, lead.timezone) for lead in f.leads] == [
        (2, "a1", "+12125550100", "America/New_York"),
        (3, "+12025550123", "+12025550123", "America/New_York"),  # no id: the number is the id
        (4, "c3", "+33123456789", "Europe/Paris"),
        (5, "d4", "+15555550100", f.leads[3].timezone),
    ]
    assert dict(f.leads[2].fields) == {"name": "Céline"}
    # A fictional number has no zone of its own: every zone of its country, the window must hold in all.
    assert len(f.leads[3].timezones) > 5 and "America/Los_Angeles" in f.leads[3].timezones


def test_an_explicit_timezone_wins_and_must_be_an_iana_name() -> None:
    f = parse_leads("phone,timezone\n+12125550100,America/Chicago\n+12125550101,Mars/Olympus\n")
    assert f.leads[0].timezones == ("America/Chicago",)
    assert f.errors == [RowError(3, "timezone 'Mars/Olympus' is not an IANA time zone name")]


def test_bad_rows_are_reported_with_their_file_line_and_reason() -> None:
    text = ("name,phone\n"          # line 1
            "Ann,+12125550100\n"    # 2 ok
            "Bob,12\n"              # 3 not possible
            "Cid,\n"                # 4 empty
            "\n"                    # 5 blank: skipped
            "Dan,+1212555010x,9\n"  # 6 too many values
            '"Eve\nMultiline",hello\n'  # 7-8: a quoted newline; the error names line 7
            "Fay,+12125550199\n")   # 9 ok
    f = parse_leads(text)
    assert not f.ok
    assert [(e.line, e.error.split(" ")[0]) for e in f.errors] == [(3, "phone"), (4, "phone"), (6, "3"), (7, "phone")]
    assert "not a possible phone number" in f.errors[0].error
    assert f.errors[1].error == "phone is empty"


def test_duplicates_are_decided_after_normalising_and_against_the_campaign() -> None:
    text = "phone\n+1 212 555 0100\n212-555-0100\n+12125550101\n+12125550102\n"
    f = parse_leads(text, existing={"+12125550102": "old"})
    assert f.ok
    assert [lead.phone for lead in f.leads] == ["+12125550100", "+12125550101"]
    assert f.duplicates == [Duplicate(3, "+12125550100"), Duplicate(5, "+12125550102")]


def test_header_problems_are_line_1() -> None:
    assert parse_leads("").errors == [RowError(1, "the file is empty: a header row with a `phone` column is required")]
    assert parse_leads("name,number\nA,1\n").errors == [RowError(1, "the header has no `phone` column")]
    assert parse_leads("phone,phone\n1,2\n").errors[0].line == 1
    assert parse_leads("phone,id\n+12125550100,x\n+12125550101,x\n").errors == [
        RowError(3, "id 'x' is already used (line 2)")]


def test_ten_thousand_leads_in_one_file() -> None:
    """Size, not speed (speed is `make bench`'s): every row accounted for, duplicates found."""
    rows = "\n".join(f"+1{200 + i % 700:03d}555{i % 5000:04d},L{i},n" for i in range(10_000))
    f = parse_leads("phone,id,name\n" + rows + "\n")
    assert f.ok and len(f.leads) + len(f.duplicates) == 10_000
    assert len({lead.phone for lead in f.leads}) == len(f.leads)
