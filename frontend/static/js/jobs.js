/* Live job progress: poll the REST API about once a second until the job has finished. */
(function () {
  "use strict";
  var FINISHED = { succeeded: 1, failed: 1, cancelled: 1 };
  var INTERVAL_MS = 1000;

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

  function poll(root, onUpdate) {
    var url = root.getAttribute("data-job-api");
    function tick() {
      getJSON(url).then(function (job) {
        render(root, job);
        if (onUpdate) onUpdate(job);
        if (!FINISHED[job.status]) setTimeout(tick, INTERVAL_MS);
      }).catch(function () { setTimeout(tick, INTERVAL_MS * 3); });
    }
    tick();
  }

  function watchJob(root) {
    if (!root) return;
    var cancel = document.getElementById("cancel-job");
    if (cancel) {
      cancel.addEventListener("click", function () {
        if (!window.confirm("Cancel this job?")) return;
        fetch(cancel.getAttribute("data-url"), {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" }
        }).then(function (r) { return r.json(); }).then(function (job) { render(root, job); });
      });
    }
    poll(root, function (job) {
      if (cancel && FINISHED[job.status]) cancel.hidden = true;
      // a pipeline reports its stages in the same response: one request per second in all
      (job.children || []).forEach(function (child) {
        var row = document.querySelector('tr[data-job-id="' + child.id + '"]');
        if (row) render(row, child);
      });
    });
  }

  /* A table of jobs: one list request per tick for all unfinished rows. */
  function watchTable(table) {
    if (!table) return;
    var api = table.getAttribute("data-jobs-api") || "/api/v1/jobs/";
    function unfinished() {
      var rows = table.querySelectorAll("tr[data-job-id]"), out = {};
      for (var i = 0; i < rows.length; i++) {
        if (!FINISHED[rows[i].getAttribute("data-status") ||
                      rows[i].querySelector('[data-field="status"]').textContent.trim()]) {
          out[rows[i].getAttribute("data-job-id")] = rows[i];
        }
      }
      return out;
    }
    function tick() {
      var rows = unfinished(), ids = Object.keys(rows);
      if (!ids.length) return;
      getJSON(api + "?ids=" + ids.join(",") + "&page_size=" + ids.length).then(function (page) {
        (page.results || []).forEach(function (job) {
          if (rows[job.id]) render(rows[job.id], job);
        });
        setTimeout(tick, INTERVAL_MS);
      }).catch(function () { setTimeout(tick, INTERVAL_MS * 3); });
    }
    tick();
  }

  window.CorreLiJobs = { watchJob: watchJob, watchTable: watchTable, getJSON: getJSON, csrfToken: csrfToken };
})();
