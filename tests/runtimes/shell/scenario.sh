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
      hog=x
      while :; do hog="$hog$hog"; done # in this shell: the runtime itself goes over MemorySize
      ;;
    *) printf '%s' "$action" ;;
  esac
}
