"""Held messages (issue #11): a campaign weeks ahead kept by batchsms and handed over by `batchsms due`,
--hold with `batchsms cancel`, late handovers, edits before the handover, one `due` at a time; and rows
inserted above sent ones. Against the real sandbox on a clock the test moves."""


import pytest
from click.testing import CliRunner

from batchsms import Options
from batchsms.api import SendOptions, Target, send_sheet
from batchsms.cli import main
from batchsms.due import cancel_held, parse_rows, submit_due
from batchsms.journal import Journal
from batchsms.state import RunLocked, journals, run_lock

from .helpers import env_for, read_results, taken_ids, write_csv

DAY = 86400


def target(server):
    return Target(server.url, server.account_sid, server.auth_token, "PS1")


def sheet(tmp_path, rows, name="campaign.csv"):
    return write_csv(tmp_path / name, [["Phone", "Name", "Schedule", "ExternalId"], *rows])


def send(path, server, **send_options):
    late = send_options.pop("late", "error")
    return send_sheet(path, Options(text="Hi {{ Name }}", timezone="UTC", late=late), target(server),
                      SendOptions(progress=False, **send_options))


def statuses(path):
    return [r["Status"] for r in read_results(path.with_name(path.stem + ".results.csv"))]


def test_a_campaign_three_weeks_ahead_is_held_then_handed_over_when_due(tmp_path, server, clock):
    start = clock()
    at = int(start + 21 * DAY)
    path = sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"], ["0412 555 121", "Bo", "", "id1"]])
    outcome = send(path, server)
    assert outcome.ok
    assert outcome.stats.counts["held"] == 1
    assert taken_ids(server) == ["id1"]  # the one without a schedule went now
    assert statuses(path) == ["held", "sent"]
    row = read_results(path.with_name("campaign.results.csv"))[0]
    assert row["Error"].startswith("held by batchsms: `batchsms due` hands it to the API from ")
    assert [p.name for p in journals()] == ["campaign.results.csv.journal"]  # registered for `due`

    nothing = submit_due(target(server), now=start + DAY)
    assert (dict(nothing.counts), nothing.waiting) == ({}, 1)
    assert nothing.next_due == at - 14 * DAY + 3600
    assert taken_ids(server) == ["id1"]

    clock.advance(7 * DAY + 2 * 3600)  # past the handover: 13 days 22 hours before its time
    run = submit_due(target(server), now=clock())
    assert run.counts["scheduled"] == 1 and run.ok
    assert taken_ids(server) == ["id1", "id0"]
    with server.state.lock:
        assert server.state.taken[-1]["Schedule"] == at
    assert statuses(path) == ["scheduled", "sent"]
    again = submit_due(target(server), now=clock() + DAY)  # nothing twice
    assert dict(again.counts) == {} and taken_ids(server) == ["id1", "id0"]
    assert send(path, server).sendplan.plan.jobs == []  # and a re-send knows it went


def test_hold_keeps_a_scheduled_message_cancellable_until_shortly_before(tmp_path, server, clock):
    at = int(clock() + 2 * 3600)
    path = sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"], ["0412 555 121", "Bo", str(at), "id1"]])
    send(path, server, hold=True, submit_ahead=900)
    assert statuses(path) == ["held", "held"]
    assert submit_due(target(server), now=clock() + 3600).counts == {}  # 45 minutes before the handover
    outcome = cancel_held(path.with_name("campaign.results.csv.journal"), {2})
    assert outcome.cancelled == [2] and outcome.handed_over == []
    assert statuses(path) == ["cancelled", "held"]
    clock.advance(2 * 3600 - 600)  # 10 minutes before its time
    run = submit_due(target(server), now=clock())
    assert run.counts["scheduled"] == 1
    assert taken_ids(server) == ["id1"]  # the cancelled one never went
    assert statuses(path) == ["cancelled", "scheduled"]
    late = cancel_held(path.with_name("campaign.results.csv.journal"), None)
    assert late.cancelled == [] and late.handed_over == [(3, "scheduled")]
    assert send(path, server, hold=True).sendplan.plan.jobs == []  # a re-send does not revive the cancelled row


def test_the_cancel_command(tmp_path, server, clock):
    at = int(clock() + 20 * DAY)
    path = sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"], ["0412 555 121", "Bo", "", "id1"]])
    send(path, server)
    results = path.with_name("campaign.results.csv")
    result = CliRunner().invoke(main, ["cancel", str(results), "--rows", "2-3"])
    assert result.exit_code == 1
    assert result.output == (
        "Cancelled: 1 held message (row 2)\n"
        "Not cancellable: row 3 already went to the API (sent); the API has no call to withdraw a message\n"
        f"Results: {results}\n")
    result = CliRunner().invoke(main, ["cancel", str(results), "--rows", "x"])
    assert result.exit_code == 2


def test_a_held_message_edited_before_the_handover_is_replaced_not_refused(tmp_path, server, clock):
    at = int(clock() + 20 * DAY)
    path = sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"]])
    send(path, server)
    sheet(tmp_path, [["0412 555 120", "Anne", str(at + 3600), "id0"]])  # a new name and time
    outcome = send(path, server)
    assert outcome.ok and outcome.stats.counts["held"] == 1
    with Journal(path.with_name("campaign.results.csv.journal")) as journal:
        [entry] = journal.entries().values()
    assert entry.request()["Text"] == "Hi Anne" and entry.request()["Schedule"] == at + 3600


def test_a_held_row_that_is_no_longer_ready_is_withdrawn(tmp_path, server, clock):
    at = int(clock() + 20 * DAY)
    path = sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"], ["0412 555 121", "Bo", str(at), "id1"]])
    send(path, server)
    sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"], ["not a number", "Bo", str(at), "id1"]])
    outcome = send(path, server)
    assert outcome.sendplan.plan.withdrawn == [3]
    clock.advance(7 * DAY)
    submit_due(target(server), now=clock())
    assert taken_ids(server) == ["id0"]


@pytest.mark.parametrize(("late", "state", "taken"), [("error", "failed", []), ("send-now", "sent", ["id0"]),
                                                      ("skip", "cancelled", [])])
def test_a_held_message_found_late_is_not_sent_late_by_surprise(tmp_path, server, clock, late, state, taken):
    at = int(clock() + 3 * 3600)
    path = sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"]])
    send(path, server, hold=True, late=late)
    clock.advance(6 * 3600)  # the machine was off: three hours past its time
    submit_due(target(server), now=clock())
    assert taken_ids(server) == taken
    assert statuses(path) == [state]
    if late == "send-now":
        with server.state.lock:
            assert "Schedule" not in server.state.taken[-1]
    if late == "error":
        error = read_results(path.with_name("campaign.results.csv"))[0]["Error"]
        assert error.startswith("not sent: its time (")


def test_one_due_at_a_time(tmp_path, server):
    with run_lock("due", what="batchsms due"):
        with pytest.raises(RunLocked):
            submit_due(target(server))
        result = CliRunner().invoke(main, ["due"], env=env_for(server, tmp_path))
        assert result.exit_code == 2
        assert "another `batchsms due` is running (pid " in result.output


def test_the_due_command_says_what_waits(tmp_path, server, clock):
    at = int(clock() + 20 * DAY)
    send(sheet(tmp_path, [["0412 555 120", "Ann", str(at), "id0"]]), server)
    result = CliRunner().invoke(main, ["due", "--timezone", "UTC"], env=env_for(server, tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Due now: nothing; still held: 1 message; next due ")


def test_parse_rows():
    assert parse_rows("5-7,9") == {5, 6, 7, 9}
    assert parse_rows(None) is None
    for bad in ("x", "7-5", "0-2"):
        with pytest.raises(ValueError):
            parse_rows(bad)


def test_rows_inserted_above_sent_ones_are_found_by_their_message(tmp_path, server):
    path = sheet(tmp_path, [["0412 555 120", "Ann", "", "id0"], ["0412 555 121", "Bo", "", "id1"]])
    send(path, server)
    sheet(tmp_path, [["0412 555 129", "Zed", "", "idZ"], ["0412 555 120", "Ann", "", "id0"],
                     ["0412 555 121", "Bo", "", "id1"]])  # a late booking on top: every row moves down
    outcome = send(path, server)
    assert outcome.ok and outcome.sendplan.plan.mismatched == []
    assert [j.row for j in outcome.sendplan.plan.jobs] == [2]
    assert sorted(taken_ids(server)) == ["id0", "id1", "idZ"]
    rows = read_results(path.with_name("campaign.results.csv"))
    assert [(r["Name"], r["Status"]) for r in rows] == [("Zed", "sent"), ("Ann", "sent"), ("Bo", "sent")]
    assert send(path, server).sendplan.plan.jobs == []


def test_a_row_whose_sent_message_changed_is_still_named(tmp_path, server):
    path = sheet(tmp_path, [["0412 555 120", "Ann", "", "id0"]])
    send(path, server)
    sheet(tmp_path, [["0412 555 120", "Annie", "", "id0"]])
    from batchsms.errors import JournalError
    with pytest.raises(JournalError, match="rows 2 now hold other messages"):
        send(path, server)
