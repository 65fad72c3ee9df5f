/**
 * Shared by the docs tests: where the repository is, and a check that the
 * local PlantUML is there. Without it the tests fail with one clear line
 * (CI installs it), rather than skip.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root, with a trailing slash. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** The PlantUML command the tests use. */
export const PLANTUML: string = "plantuml";

let checked: string | undefined;

/**
 * Throws unless `plantuml -version` runs.
 *
 * @throws {Error} Naming the packages to install.
 */
export function requirePlantUml(): void {
  checked ??= probe();
  if (checked !== "") throw new Error(checked);
}

function probe(): string {
  const result = spawnSync(PLANTUML, ["-version"], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.error || result.status !== 0) {
    return `PlantUML is required by this test and is not usable ` +
      `(${result.error?.message ?? `exit status ${result.status}`}): ` +
      `apt-get install -y plantuml graphviz`;
  }
  return "";
}
