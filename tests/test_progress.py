"""The progress bar keeps what a user watches — done, total, ETA — on an 80-column terminal."""

from lbdata.progress import ProgressBar

HTTP_STATS = "failed 12  accepted 1,500  1,234 req/min 456,789 tok/min  $12.3456  retried 429=31, timeout=4"


def test_count_total_and_eta_survive_a_long_stats_text_at_80_and_60_columns():
    with ProgressBar("generate", 40_000, unit="traces") as bar:
        bar.update(completed=18_600, stats=HTTP_STATS, force=True)
        for width in (80, 60):
            lines = bar.render_text(width).splitlines()
            assert len(lines) == 2, lines
            assert "18600/40000" in lines[0] and "eta" in lines[0] and "traces/s" in lines[0], lines
            assert all(len(line) <= width for line in lines), lines
            assert lines[1].strip().startswith("failed 12  accepted 1,500"), lines
        wide = bar.render_text(200).splitlines()
        assert wide[1].strip() == HTTP_STATS  # nothing cut when there is room


def test_without_stats_one_line_and_disabled_renders_nothing():
    with ProgressBar("validate", 10, unit="traces") as bar:
        bar.update(advance=3, force=True)
        lines = bar.render_text(80).splitlines()
        assert len(lines) == 1 and "3/10" in lines[0]
    off = ProgressBar("validate", 10, enabled=False)
    off.update(advance=3, stats="x")
    assert off.render_text(80) == ""
    off.close()
