# A shell handler that does nothing, for the Runtime API benchmark (answers JSON null).
handler() {
  printf null
}
