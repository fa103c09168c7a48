/* Live job progress, pushed by the server over server-sent events (no polling). */
(function () {
  "use strict";
  var FINISHED = { succeeded: 1, failed: 1, cancelled: 1 };

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status + " " + r.statusText); return r.json(); });
  }

  function setField(root, name, fn) {
    var nodes = root.querySelectorAll('[data-field="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) fn(nodes[i]);
  }

  function render(root, job) {
    root.setAttribute("data-status", job.status);
    setField(root, "status", function (el) {
      el.textContent = job.status;
      el.className = "badge job-status status-" + job.status;
    });
    setField(root, "progress", function (el) { el.value = job.progress; });
    setField(root, "percent", function (el) { el.textContent = Math.round(job.progress * 100) + " %"; });
    setField(root, "step", function (el) {
      if (job.error && el.tagName === "TD") {
        el.innerHTML = "";
        var span = document.createElement("span");
        span.className = "error";
        span.textContent = job.error;
        el.appendChild(span);
      } else {
        el.textContent = job.step || "";
      }
    });
    setField(root, "error", function (el) { el.textContent = job.error || ""; el.hidden = !job.error; });
    setField(root, "results", function (el) {
      if (!job.results || !job.results.length || el.getAttribute("data-filled")) return;
      el.innerHTML = "";
      job.results.forEach(function (r) {
        var a = document.createElement("a");
        a.className = "btn primary";
        a.href = r.page_url;
        a.textContent = "View result: " + r.name;
        el.appendChild(a);
        el.appendChild(document.createTextNode(" "));
      });
      el.setAttribute("data-filled", "1");
    });
  }

  /* One EventSource per page for the user's projects (GET /api/v1/events/, server-sent events):
     the server pushes job, comment, dataset and live-map changes; nothing here polls. */
  var source = null, handlers = {};
  function on(type, fn) {
    (handlers[type] = handlers[type] || []).push(fn);
    if (!source) {
      source = new EventSource("/api/v1/events/");
      ["hello", "job", "comment", "dataset", "live-map", "reconnect"].forEach(function (t) {
        source.addEventListener(t, function (e) {
          var data = e.data ? JSON.parse(e.data) : {};
          (handlers[t] || []).forEach(function (h) { h(data); });
        });
      });
    } else if (type === "hello" && source.readyState === 1) {
      fn({});
    }
  }

  /* Ask once (on a click: browsers require a gesture) whether finished jobs may notify. */
  function offerNotifications(button, isFinished) {
    if (!button || !("Notification" in window) || Notification.permission !== "default" || isFinished()) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function () { button.hidden = true; });
    });
  }

  function notifyFinished(job) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var n = new Notification("CorreLi job #" + job.id + " " + job.status,
                             { body: job.error || job.step || job.kind || "", tag: "correli-job-" + job.id });
    n.onclick = function () { window.focus(); n.close(); };
  }

  function watchJob(root) {
    if (!root) return;
    var jobId = parseInt(root.getAttribute("data-job-id"), 10);
    var status = root.getAttribute("data-status") || "";
    var cancel = document.getElementById("cancel-job");
    if (cancel) {
      cancel.addEventListener("click", function () {
        if (!window.confirm("Cancel this job?")) return;
        fetch(cancel.getAttribute("data-url"), {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" }
        }).then(function (r) { return r.json(); }).then(function (job) { update(job); });
      });
    }
    offerNotifications(document.getElementById("notify-job"), function () { return FINISHED[status]; });
    function update(job) {
      var wasRunning = !FINISHED[status];
      status = job.status;
      render(root, job);
      if (cancel && FINISHED[job.status]) cancel.hidden = true;
      if (wasRunning && FINISHED[job.status]) notifyFinished(job);
      (job.children || []).forEach(renderChild);
    }
    function renderChild(child) {
      var row = document.querySelector('tr[data-job-id="' + child.id + '"]');
      if (row) render(row, child);
    }
    // (re)connected: read the job once, so nothing that happened while disconnected is missed
    on("hello", function () { getJSON(root.getAttribute("data-job-api")).then(update).catch(function () {}); });
    on("job", function (job) {
      if (job.id === jobId) {
        // the stream carries the job's own fields; its results come with the finished state
        update(job);
      } else if (job.parent === jobId) {
        renderChild(job);
      }
    });
  }

  /* A table of jobs: each row follows the pushed changes of its job. */
  function watchTable(table) {
    if (!table) return;
    on("job", function (job) {
      var row = table.querySelector('tr[data-job-id="' + job.id + '"]');
      if (row) render(row, job);
    });
  }

  window.CorreLiJobs = { watchJob: watchJob, watchTable: watchTable, getJSON: getJSON, csrfToken: csrfToken, on: on };
})();
