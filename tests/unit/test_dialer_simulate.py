"""The pacing simulator: determinism, common random numbers, the closed-form self-check, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cc_ari import cli
from cc_ari.dialer.pacing import Predictive, Progressive
from cc_ari.dialer.simulate import (
    POLICY_NAMES,
    Oracle,
    SimParams,
    Simulation,
    expected_dialing_cycle,
    progressive_talk_share,
    run_seed,
    simulate,
    worst_window,
)

SHORT = SimParams(agents=10, aht=120.0, hours=0.1, seeds=2)


def test_a_seed_gives_the_same_run_every_time() -> None:
    for policy in POLICY_NAMES:
        assert run_seed(SHORT, policy, 3) == run_seed(SHORT, policy, 3)
    assert run_seed(SHORT, "progressive", 3) != run_seed(SHORT, "progressive", 4)


def test_every_policy_gets_the_same_calls_for_a_seed() -> None:
    runs = [Simulation(SHORT, policy, 5) for policy in (Progressive(), Predictive(), Oracle())]
    for sim in runs:
        sim.run()
    drawn = [sim.calls._drawn for sim in runs]
    common = min(len(d) for d in drawn)
    assert common > 100
    assert drawn[0][:common] == drawn[1][:common] == drawn[2][:common]
    assert Simulation(SHORT, Progressive(), 6).calls.get(0) != runs[0].calls.get(0)


@pytest.mark.parametrize("params", [
    SimParams(agents=20, aht=180.0, wrap=10.0, p_live=0.25, hours=3.0, seeds=2),
    SimParams(agents=10, aht=60.0, wrap=5.0, p_live=0.5, p_machine=0.2, p_busy=0.05, ring_time=6.0,
              hours=2.0, seeds=2),
    SimParams(agents=30, aht=300.0, wrap=20.0, p_live=0.1, ring_time=10.0, ring_timeout=25.0, hours=2.0, seeds=1),
])
def test_progressive_talk_share_matches_its_closed_form(params: SimParams) -> None:
    [report] = simulate(params, ["progressive"])
    assert report.abandon_rate_worst_window == 0.0
    assert report.talk_share == pytest.approx(progressive_talk_share(params), abs=0.02)


def test_dialing_cycle_closed_form() -> None:
    everyone_answers = SimParams(p_live=1.0, p_machine=0.0, p_busy=0.0, ring_time=8.0)
    assert 7.0 < expected_dialing_cycle(everyone_answers) < 8.0  # one dial, its answer time (capped mean)
    half = SimParams(p_live=0.5, p_machine=0.0, p_busy=0.0, ring_time=8.0, ring_timeout=20.0)
    assert expected_dialing_cycle(half) == pytest.approx(expected_dialing_cycle(everyone_answers) + 20.0)


def test_oracle_and_predictive_beat_progressive_and_the_oracle_never_drops() -> None:
    params = SimParams(agents=10, aht=120.0, hours=0.5, seeds=1)
    reports = {r.policy: r for r in simulate(params, ["progressive", "predictive", "oracle"])}
    assert reports["oracle"].abandon_rate_mean == 0.0
    assert reports["oracle"].talk_share > reports["predictive"].talk_share >= reports["progressive"].talk_share


def test_changing_conditions_run() -> None:
    params = SimParams(agents=10, aht=60.0, hours=0.25, seeds=1, half_live_mid_shift=True, breaks=True)
    for report in simulate(params, POLICY_NAMES):
        assert 0.0 < report.talk_share < 1.0
    hour = run_seed(SimParams(agents=10, aht=60.0, hours=1.0, seeds=1, breaks=True), "progressive", 0)
    assert hour.logged_in_seconds == pytest.approx(10 * 3600.0 - 2 * 900.0)  # 2 agents, 15 min each


def test_worst_window_slides_over_the_run() -> None:
    lives = [float(t) for t in range(0, 100, 2)]  # 50 live answers, one every 2 s
    assert worst_window(lives, [], 20.0, 100.0) == 0.0
    assert worst_window(lives, [10.0, 12.0], 20.0, 100.0) == pytest.approx(2 / 10)  # [0, 20] or so: 10 lives
    assert worst_window(lives, [10.0, 80.0], 200.0, 100.0) == pytest.approx(2 / 50)  # shorter than a window


@pytest.mark.parametrize("changes", [{"agents": 0}, {"p_live": 0.0}, {"p_live": 0.8, "p_machine": 0.3},
                                     {"ring_timeout": 10.0}, {"ring_time": 25.0}, {"abandon_target": 1.5},
                                     {"hours": -1.0}, {"seeds": 0}])
def test_bad_parameters_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimParams(**changes)  # type: ignore[arg-type]


def test_cli_json_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["dialer", "simulate", "--agents", "5", "--hours", "0.05", "--seeds", "1", "--json",
                     "--policy", "progressive,adaptive,predictive,oracle"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"params", "policies"}
    assert out["params"]["agents"] == 5
    assert [p["policy"] for p in out["policies"]] == ["progressive", "adaptive", "predictive", "oracle"]
    for p in out["policies"]:
        assert set(p) == {"policy", "talk_share", "contacts_per_agent_hour", "abandon_rate_mean",
                          "abandon_rate_worst_seed", "abandon_rate_worst_window", "dials_per_contact"}


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dialer", "simulate", "--agents", "3", "--hours", "0.05", "--seeds", "1",
                     "--policy", "progressive"]) == 0
    out = capsys.readouterr().out
    assert "progressive" in out and "closed form" in out


@pytest.mark.parametrize("argv", [["--p-live", "2"], ["--policy", "fast"], ["--agents", "x"],
                                  ["--ring-timeout", "10"], ["--aht", "nan"], ["--seeds", "0"],
                                  ["--p-live", "0.7", "--p-machine", "0.4"]])
def test_cli_bad_arguments_exit_2_with_one_error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["dialer", "simulate", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err


def test_the_bench_runs_by_its_path_as_well_as_as_a_module() -> None:
    root = Path(__file__).resolve().parents[2]
    for argv in (["bench/dialer.py", "--help"], ["-m", "bench.dialer", "--help"]):
        done = subprocess.run([sys.executable, *argv], cwd=root, capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr
        assert "--quick" in done.stdout
    elsewhere = subprocess.run([sys.executable, str(root / "bench" / "dialer.py"), "--help"], cwd=root.parent,
                               capture_output=True, text=True, timeout=60, check=False)
    assert elsewhere.returncode == 0, elsewhere.stderr


def test_predictive_pays_drops_for_talk_within_the_target() -> None:
    params = SimParams(agents=20, aht=180.0, hours=1.0, warmup=900.0, seeds=1)
    reports = {r.policy: r for r in simulate(params, ["progressive", "predictive"])}
    predictive = reports["predictive"]
    assert predictive.talk_share > reports["progressive"].talk_share + 0.05
    assert 0.0 < predictive.abandon_rate_worst_window <= params.abandon_target
