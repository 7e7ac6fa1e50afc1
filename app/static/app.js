// Help button: opens the help panel and searches the FAQ as you type.
(function () {
  var button = document.getElementById('help-button');
  var panel = document.getElementById('help-panel');
  var input = document.getElementById('help-q');
  var results = document.getElementById('help-results');
  if (!button || !panel) return;
  button.addEventListener('click', function (ev) {
    ev.preventDefault();
    var open = panel.hasAttribute('hidden');
    if (open) { panel.removeAttribute('hidden'); input.focus(); search(); }
    else { panel.setAttribute('hidden', ''); }
    button.setAttribute('aria-expanded', open ? 'true' : 'false');
  });
  var timer = null;
  input.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(search, 150); });
  function search() {
    fetch('/help/faq.json?q=' + encodeURIComponent(input.value)).then(function (r) { return r.json(); })
      .then(function (items) {
        results.textContent = '';
        items.slice(0, 8).forEach(function (item) {
          var li = document.createElement('li');
          var q = document.createElement('strong'); q.textContent = item.question;
          var a = document.createElement('p'); a.textContent = item.answer;
          li.appendChild(q); li.appendChild(a); results.appendChild(li);
        });
        if (!items.length) { var li = document.createElement('li'); li.textContent = results.getAttribute('data-empty') || 'No answer found. Try the support page.'; results.appendChild(li); }
      }).catch(function () {});
  }
  document.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape' && !panel.hasAttribute('hidden')) { panel.setAttribute('hidden', ''); button.setAttribute('aria-expanded', 'false'); button.focus(); }
  });
})();
