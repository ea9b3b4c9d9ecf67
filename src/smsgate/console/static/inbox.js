// The developer inbox: rows from the server-sent events of /console/inbox/events,
// one per message, replaced in place when its state changes.
(function () {
  "use strict";
  var table = document.getElementById("inbox");
  var body = table.querySelector("tbody");
  var live = document.getElementById("live");
  var canReply = !!document.getElementById("reply-form");

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function render(m) {
    var row = document.createElement("tr");
    row.id = "m-" + m.id;
    row.dataset.state = m.state;
    var link = document.createElement("a");
    link.href = "/console/messages/" + m.id;
    link.textContent = m.id;
    cell(row, "").appendChild(link);
    cell(row, m.at);
    cell(row, m.phone, "phone");
    cell(row, m.content, "content");
    cell(row, String(m.units));
    var state = document.createElement("span");
    state.className = "state state-" + m.state;
    state.textContent = m.state_text;
    cell(row, "").appendChild(state);
    if (canReply) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary reply";
      button.textContent = table.dataset.reply;
      button.setAttribute("aria-label", table.dataset.reply + " " + m.phone);
      button.addEventListener("click", function () {
        document.getElementById("reply-phone").value = m.phone;
        document.getElementById("reply-content").focus();
      });
      cell(row, "").appendChild(button);
    }
    return row;
  }

  var source = new EventSource("/console/inbox/events");
  source.addEventListener("open", function () { live.textContent = live.dataset.on; });
  source.addEventListener("error", function () { live.textContent = live.dataset.off; });
  source.addEventListener("message", function (event) {
    var m = JSON.parse(event.data);
    var old = document.getElementById("m-" + m.id);
    if (old && old.dataset.state === m.state) return;  // sent again after a reconnect
    var row = render(m);
    if (old) body.replaceChild(row, old);
    else body.insertBefore(row, body.firstChild);
  });
})();
