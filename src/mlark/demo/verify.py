"""The demo's last step, whatever capabilities ran before it: fsck re-reads and re-hashes everything."""

from __future__ import annotations

from mlark.demo.context import DemoContext, step
from mlark.demo.report import fmt_bytes


@step("Verify every byte (fsck)")
def fsck(ctx: DemoContext) -> None:
    report = ctx.repo.fsck()
    ctx.out.command("mlark fsck")
    for warning in report.warnings:
        ctx.out.say(f"warning: {warning}")
    detail = (f"{report.packs_checked} pack(s), {report.chunks_checked} chunk(s), {fmt_bytes(report.bytes_checked)}, "
              f"{report.versions_checked} version(s)")
    ctx.require("fsck: every chunk of every pack matches its digest, every version's tree is complete",
                report.ok, detail if report.ok else "; ".join(report.errors))
    ctx.out.say(f"fsck read back all {report.bytes_checked:,} bytes of the repository's packs, hashed each of the "
                f"{report.chunks_checked} chunks against its name, and checked that the tree of each of the "
                f"{report.versions_checked} versions is whole. Any damaged byte would have been named here.")
    ctx.summary["fsck"] = report.to_dict()


STEPS = (fsck,)
