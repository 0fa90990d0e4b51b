"""The bench's arithmetic: percentiles from sorted samples, ratios, tables and the stage split."""

from __future__ import annotations

import pytest

from bench.pipeline_log import answer_breakdown
from bench.report import verdict
from bench.stats import fmt, fmt_ratio, markdown_table, percentile, ratio, summarize

pytestmark = pytest.mark.unit


def test_percentiles_are_nearest_rank_values_that_were_measured() -> None:
    samples = [float(x) for x in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(samples, 50) == 50
    assert percentile(samples, 95) == 95
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100
    assert percentile(samples, 0) == 1
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0  # no interpolation between samples


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary() -> None:
    s = summarize([4.0, 1.0, 3.0, 2.0])
    assert s is not None
    assert (s.n, s.p50, s.p95, s.min, s.max, s.mean) == (4, 2.0, 4.0, 1.0, 4.0, 2.5)
    assert summarize([]) is None


def test_ratio_and_formatting() -> None:
    assert ratio(50, 200) == 0.25
    assert ratio(1, 0) is None
    assert ratio(None, 3) is None
    assert fmt_ratio(0.254) == "0.25x"
    assert fmt_ratio(None) == "n/a"
    assert fmt(1234.5) == "1,234"  # banker's rounding of .5 is fine for a report
    assert fmt(2.345, 1, " ms") == "2.3 ms"
    assert fmt(None) == "n/a"


def test_verdict_against_targets() -> None:
    assert verdict(250, 300) == "met"
    assert verdict(301, 300) == "missed"
    assert verdict(0.6, 0.5, at_least=True) == "met"
    assert verdict(None, 1) == "not measured"


def test_markdown_table_aligns_numbers_right_and_escapes_pipes() -> None:
    table = markdown_table(["name", "p50 ms"], [["a|b", "12.5"], ["c", "n/a"]])
    assert table.splitlines() == [
        "| name | p50 ms |",
        "|---|---:|",
        "| a\\|b | 12.5 |",
        "| c | n/a |",
    ]


def test_markdown_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [["1"]])


def _line(metric: str, **numbers: float) -> dict[str, object]:
    return {"event": "pipeline_metrics", "room": "r", "metric": metric, **numbers}


def test_answer_breakdown_splits_the_last_turn_into_stages() -> None:
    lines = [
        _line("tts_metrics", ttfb=0.9),  # the greeting: before the user's turn, ignored
        _line("stt_metrics", duration=0.5),
        _line("eou_metrics", transcription_delay=1.1, end_of_utterance_delay=1.15),
        _line("llm_metrics", ttft=0.01),
        _line("tts_metrics", ttfb=0.2),
    ]
    stages = answer_breakdown(lines)
    assert stages == pytest.approx(
        {
            "end_of_speech": 600.0,
            "stt": 500.0,
            "turn_commit": 50.0,
            "responder": 10.0,
            "tts_first_audio": 200.0,
        }
    )


def test_answer_breakdown_needs_every_stage() -> None:
    assert answer_breakdown([_line("tts_metrics", ttfb=0.9)]) is None
    assert (
        answer_breakdown([_line("eou_metrics", transcription_delay=1, end_of_utterance_delay=1)])
        is None
    )
