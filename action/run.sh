#!/usr/bin/env bash
# Step 2 of the llm-registry action: run one command, report its outcome as step outputs.
#
#   validate  validate --format github (errors annotate the diff)
#   plan      plan --detailed-exitcode, and on a pull request --pr-comment
#             (one sticky comment, annotations, job summary); fails on errors and blocked plans
#   apply     db upgrade, plan --out PLANFILE, apply PLANFILE: made and applied in this job
#   dry-run   apply --dry-run: everything, connection tests included, then rolled back
#   drift     plan --detailed-exitcode --drift-issue: one issue opened/updated on drift, closed when clean
#
# Outputs: exit-code (of the last command), has-changes, blocked, plan-file.
# Inputs arrive as INPUT_* variables (see action.yml).
set -uo pipefail

command="${INPUT_COMMAND:?}"
read -r -a directories <<<"${INPUT_DIRECTORIES:-registry.d}"
plan_file="${RUNNER_TEMP:?}/llm-registry.plan"
log="${RUNNER_TEMP}/llm-registry.log"
if [ -n "${INPUT_DATABASE_URL:-}" ]; then
    export LLM_REGISTRY_DATABASE_URL="$INPUT_DATABASE_URL"
fi
if [ -n "${INPUT_ENVIRONMENT:-}" ]; then
    export LLM_REGISTRY_ENVIRONMENT="$INPUT_ENVIRONMENT"
fi
export NO_COLOR=1

code=0
run() {
    echo "+ llm-registry $*" >&2
    llm-registry "$@" 2>&1 | tee -a "$log"
    code=${PIPESTATUS[0]}
}
summarise() {  # the command's output in the job summary (it never holds a secret)
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
        {
            echo "### llm-registry $command (${INPUT_ENVIRONMENT:-no environment})"
            echo '```text'
            # GitHub drops a step summary over 1 MiB: a long plan is cut (it is whole in the log).
            sed 's/^::[a-z]*[^:]*::/annotation: /' "$log" | head -c 900000
            if [ "$(wc -c <"$log")" -gt 900000 ]; then echo; echo "... (cut: the whole output is in the job's log)"; fi
            echo '```'
        } >>"$GITHUB_STEP_SUMMARY"
    fi
}

: >"$log"
has_changes=false
blocked=false
case "$command" in
    validate)
        run validate "${directories[@]}" --format github
        ;;
    plan)
        args=(plan "${directories[@]}" --detailed-exitcode)
        if [ "${INPUT_PR_COMMENT:-true}" = true ] && [[ "${GITHUB_EVENT_NAME:-}" == pull_request* ]]; then
            args+=(--pr-comment)
        fi
        run "${args[@]}"
        ;;
    drift)
        run plan "${directories[@]}" --detailed-exitcode --drift-issue
        ;;
    dry-run)
        run apply "${directories[@]}" --dry-run
        summarise
        ;;
    apply)
        run db upgrade
        if [ "$code" -eq 0 ]; then
            run plan "${directories[@]}" --detailed-exitcode --out "$plan_file"
        fi
        if [ "$code" -eq 2 ]; then
            has_changes=true
            run apply "$plan_file"
        fi
        summarise
        ;;
    *)
        echo "::error title=llm-registry action::unknown command '$command': use validate, plan, apply, dry-run or drift"
        exit 1
        ;;
esac

case "$command:$code" in
    plan:2 | drift:2) has_changes=true ;;
    *:3) blocked=true ;;
esac
{
    echo "exit-code=$code"
    echo "has-changes=$has_changes"
    echo "blocked=$blocked"
    if [ -f "$plan_file" ]; then echo "plan-file=$plan_file"; else echo "plan-file="; fi
} >>"${GITHUB_OUTPUT:?}"

# Exit 2 of plan and drift means "changes", not failure; the drift issue is the report.
case "$command:$code" in
    plan:2 | drift:2) exit 0 ;;
    *) exit "$code" ;;
esac
