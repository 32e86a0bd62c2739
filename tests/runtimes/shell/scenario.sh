# The shell handler: records the event, then does what scenario_action.py read from it.
handler() {
  printf '%s\n' "$1" >>"$ESM_RECORDER_FILE"
  action=$(printf '%s' "$1" | "$ESM_TEST_PYTHON" "$LAMBDA_TASK_ROOT/scenario_action.py")
  case "$action" in
    fail)
      echo "a record asked to fail" >&2
      printf '%s' '{"errorMessage":"a record asked to fail","errorType":"ScenarioError"}'
      return 1
      ;;
    sleep) sleep 30 ;;
    crash) exit 3 ;;
    oom)
      hog=$(head -c 250000000 /dev/zero | tr '\0' x)
      printf '%s' "${#hog}"
      ;;
    *) printf '%s' "$action" ;;
  esac
}
