import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requirePlantUml, ROOT } from "./_plantuml.ts";

const SOURCES = join(ROOT, "docs/puml");
const FIGURES = join(ROOT, "docs/figures");

function names(dir: string, extension: string): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith(extension))
    .map((file) => file.slice(0, -extension.length))
    .sort();
}

describe("docs/figures", () => {
  test("holds exactly one SVG per docs/puml source", () => {
    assert.deepEqual(
      names(FIGURES, ".svg"),
      names(SOURCES, ".puml"),
      "run scripts/docs/puml2svg and commit docs/figures",
    );
  });

  test("every SVG is what scripts/docs/puml2svg renders now", {
    timeout: 120_000,
  }, () => {
    requirePlantUml();
    const out = mkdtempSync(join(tmpdir(), "wsevent-figures-"));
    try {
      // One JVM renders every source, exactly as the script does for docs/figures.
      const run = spawnSync(
        "bash",
        [join(ROOT, "scripts/docs/puml2svg"), out],
        {
          encoding: "utf8",
          timeout: 110_000,
        },
      );
      assert.equal(
        run.status,
        0,
        `scripts/docs/puml2svg failed:\n${run.stderr}`,
      );
      const stale = names(SOURCES, ".puml").filter((name) => {
        const fresh = readFileSync(join(out, `${name}.svg`));
        const committed = readFileSync(join(FIGURES, `${name}.svg`));
        return !fresh.equals(committed);
      });
      assert.deepEqual(
        stale,
        [],
        `out of date in docs/figures: ${stale.join(", ")}; ` +
          "run scripts/docs/puml2svg and commit the SVGs (if the sources did " +
          "not change, this machine's plantuml, graphviz or fonts differ " +
          "from Debian 12's: see scripts/docs/puml2svg)",
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test("SVGs carry no PlantUML metadata (versions, locale, source copy)", () => {
    for (const name of names(FIGURES, ".svg")) {
      const svg = readFileSync(join(FIGURES, `${name}.svg`), "utf8");
      assert.ok(
        svg.startsWith("<?xml") || svg.startsWith("<svg"),
        `${name}.svg`,
      );
      assert.ok(!svg.includes("<!--"), `${name}.svg has a comment`);
      assert.ok(!/Java Version|PlantUML version/.test(svg), `${name}.svg`);
    }
  });

  test("every source is one diagram with a title", () => {
    for (const name of names(SOURCES, ".puml")) {
      const text = readFileSync(join(SOURCES, `${name}.puml`), "utf8");
      assert.equal(
        text.match(/^@startuml\s*$/gm)?.length,
        1,
        `${name}.puml: one bare @startuml`,
      );
      assert.equal(
        text.match(/^@enduml\s*$/gm)?.length,
        1,
        `${name}.puml: one @enduml`,
      );
      assert.match(text, /^title /m, `${name}.puml has no title`);
    }
  });
});
