// crm2erp console: one-key shortcuts. A key press clicks the element whose
// data-key names it (a: accept, r: reject, d: defer), unless a text field has focus.
document.addEventListener("keydown", function (event) {
  var target = event.target;
  if (event.key === "Escape" && target && target.blur) { target.blur(); return; }
  if (event.ctrlKey || event.metaKey || event.altKey) { return; }
  if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
                 target.tagName === "SELECT" || target.isContentEditable)) { return; }
  var element = document.querySelector('[data-key="' + event.key + '"]');
  if (element) { event.preventDefault(); element.click(); }
});
