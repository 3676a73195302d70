"""A trial from enrolment to adherence, through the broker under its ACL and PostgreSQL:
`study enroll` delivers, the gateway shows only the label, the participant's session reaches
the centre, and the report counts the window done."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from acudevice.bridge.acl import acl_text
from acudevice.bridge.mqtt import BrokerAddress, Credentials, MqttClient
from acudevice.bridge.participants import Participants
from acudevice.cli.main import app
from acudevice.store import Journal
from acudevice.study.ingest import Ingester
from tests.bridge_helpers import GW, result_for, running_bridge, topic
from tests.mqtt_broker import Broker, Watcher
from tests.study_helpers import centre, query, until
from tests.trial_helpers import EXAMPLE, band_event, no_secrets, schedule_state

pytestmark = pytest.mark.mqtt
USERS = {GW: "pw-g", "ingester": "pw-i", "homeassistant": "pw-h", "operator": "pw-o"}
runner = CliRunner()


async def cli(*args: str) -> Result:
    """The command in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(runner.invoke, app, list(args))


def study_around_now(path: Path) -> Path:
    """The shipped nausea study, but its one daily window open now: in the fixed-offset zone
    where it is about noon, 10:00-14:00, for two days from today."""
    offset = 12 - dt.datetime.now(dt.UTC).hour  # -11 to +12 hours
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    text = EXAMPLE.read_text()
    schedule = text[text.index("[schedule]") : text.index("[reminders]")]
    text = text.replace(
        schedule,
        f'[schedule]\ntimezone = "{zone}"\ndays = 2\nstart_after_days = 0\n'
        'windows = [{ start = "10:00", end = "14:00" }]\n\n',
    )
    path.write_text(text)
    return path


async def test_from_enrolment_to_adherence_the_gateway_shows_only_the_label(
    tmp_path: Path, pg_url: str
) -> None:
    study = study_around_now(tmp_path / "study.toml")
    probe = "\nuser operator\ntopic write acudevice/_watcher-probe\n"
    acl = acl_text([GW], participants={GW: ["P1"]}) + probe
    broker = Broker(tmp_path / "broker", users=USERS, acl=acl)
    broker.start()
    (tmp_path / "pw-i").write_text("pw-i\n")
    try:
        await centre(pg_url, [GW])
        enrolled = await cli(
            "study", "enroll", "P1", "--study", str(study), "--database", pg_url,
            "--attribute", "site=leeds", "--broker", broker.url, "--username", "ingester",
            "--password-file", str(tmp_path / "pw-i"),
        )  # fmt: skip
        assert enrolled.exit_code == 0, enrolled.output
        ingester = Ingester(pg_url)
        centre_client = MqttClient(
            BrokerAddress.parse(broker.url), client_id="ingest-1",
            credentials=Credentials("ingester", USERS["ingester"]),
        )  # fmt: skip
        ingesting = asyncio.create_task(ingester.run(centre_client))
        async with Watcher(broker, "acudevice/#", user="operator") as watcher:
            with Journal() as journal:  # the default one, which `history` reads
                async with running_bridge(
                    broker, {"left": "sim://?speed=10&seed=7"}, journal=journal,
                    credentials=Credentials(GW, USERS[GW]), participants=Participants({"left": "P1"}),
                    allow_remote_start=True, ha_discovery=True,
                ):  # fmt: skip
                    got = await watcher.wait_for(band_event("left", "schedule-received"))
                    since = watcher.seen.index(got)
                    await watcher.wait_for(schedule_state("left", lambda s: s["due"]))
                    body = json.dumps({"request_id": "go", "issued_at": time.time()})
                    await broker.pub(topic("left", "cmd/start-scheduled"), body, user="operator")
                    reply = json.loads((await watcher.wait_for(result_for("go"))).payload)
                    assert reply["status"] == "ok", reply
                    await watcher.wait_for(schedule_state("left", lambda s: not s["due"]))
                    await watcher.wait_for(
                        lambda s: (
                            s.topic == topic("left", "state")
                            and json.loads(s.payload)["phase"] == "hold"
                        )
                    )
                    stop = json.dumps({"request_id": "halt"})
                    await broker.pub(topic("left", "cmd/stop"), stop, user="operator")
                    await watcher.wait_for(band_event("left", "session-finished"))

                    async def arrived() -> bool:
                        rows = await query(
                            pg_url, "SELECT outcome, program FROM sessions WHERE participant='P1'"
                        )
                        return [tuple(r) for r in rows] == [("stopped", "study-programme")]

                    await until(arrived)
        ingesting.cancel()
        await asyncio.gather(ingesting, return_exceptions=True)
        no_secrets([s for s in watcher.seen[since:] if "/cmd/" not in s.topic])

        history = await cli("history")
        assert history.exit_code == 0, history.output
        assert "Study programme" in history.stdout and "nausea" not in history.stdout
        report = await cli(
            "study", "report", "--database", pg_url, "-o", str(tmp_path / "r.png"), "--json"
        )
        assert report.exit_code == 0, report.output
        figures = json.loads(report.stdout)
        [today] = [a for a in figures["adherence"] if a["participant"] == "P1" and a["day"] == 1]
        assert (today["windows"], today["done"], today["missed"]) == (1, 1, 0)
        assert not re.search(r"\b(active|sham)\b", report.stdout), "no arms without a reason"
    finally:
        broker.stop()
