/* CorreLi upload widget: drag and drop of one or many files onto #upload-dropzone, each sent
 * with tus-js-client (resumable, tus 1.0.0) to /api/v1/uploads/. Per-file progress bar,
 * pause/resume/cancel; an upload interrupted by a dropped connection retries by itself, and one
 * interrupted by a page reload resumes when the same file is dropped again (tus-js-client keeps
 * the upload URL in localStorage under a fingerprint of the file and its catalogue links). */
(function () {
  "use strict";

  var CHUNK_BYTES = 64 * 1024 * 1024; // fits nginx/gunicorn body limits; the server streams it
  var RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];
  var LINKS = ["project", "dataset_kind", "cell", "charge_state", "beamtime", "region"];

  function formatBytes(n) {
    var units = ["B", "kB", "MB", "GB", "TB"];
    var i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function errorMessage(err) {
    var res = err && err.originalResponse;
    if (res) {
      try {
        var body = JSON.parse(res.getBody());
        if (body && body.detail) return body.detail + " (HTTP " + res.getStatus() + ")";
      } catch (e) { /* not JSON */ }
      return "HTTP " + res.getStatus();
    }
    return err && err.message ? err.message : String(err);
  }

  function init(widget) {
    var endpoint = widget.dataset.endpoint;
    var csrf = widget.dataset.csrf;
    var datasetUrl = widget.dataset.datasetUrl;
    var zone = widget.querySelector(".upload-zone");
    var input = zone.querySelector("input[type=file]");
    var list = widget.querySelector(".upload-list");
    var field = function (name) { return widget.querySelector("[name=" + name + "]"); };

    // Offer only the cells, charge states and beamtimes of the chosen project (and cell).
    function filterChoices() {
      var project = field("project").value;
      var cell = field("cell").value;
      ["cell", "charge_state", "beamtime"].forEach(function (name) {
        Array.prototype.forEach.call(field(name).options, function (option) {
          if (!option.value) return;
          var hidden = (project && option.dataset.project !== project) ||
            (name === "charge_state" && cell && option.dataset.cell !== cell);
          option.hidden = !!hidden;
          if (hidden && option.selected) field(name).value = "";
        });
      });
    }
    field("project").addEventListener("change", filterChoices);
    field("cell").addEventListener("change", filterChoices);
    filterChoices();

    function metadataFor(file) {
      var meta = { filename: file.name, filetype: file.type || "application/octet-stream" };
      LINKS.forEach(function (name) {
        var value = field(name).value;
        if (value !== "") meta[name] = value;
      });
      return meta;
    }

    function showUnfinished() {
      var box = widget.querySelector(".upload-unfinished");
      var storage = tus.defaultOptions && tus.defaultOptions.urlStorage;
      if (!storage || !storage.findAllUploads) return;
      storage.findAllUploads().then(function (uploads) {
        var mine = uploads.filter(function (u) { return u.uploadUrl && u.uploadUrl.indexOf(endpoint) !== -1; });
        box.hidden = mine.length === 0;
        if (!mine.length) return;
        var names = mine.map(function (u) { return (u.metadata && u.metadata.filename) || "?"; });
        box.textContent = "Unfinished: " + names.join(", ") +
          ". Drop the same file again (same project and links) to continue where it stopped.";
      });
    }

    function start(file) {
      var meta = metadataFor(file);
      if (!meta.project) {
        window.alert("Choose a project first.");
        return;
      }
      var item = el("li", { "class": "upload-item" });
      var name = el("span", { "class": "upload-name" }, file.name + " (" + formatBytes(file.size) + ")");
      var bar = el("progress", { max: "100", value: "0" });
      var buttons = el("span", { "class": "upload-actions" });
      var pause = el("button", { type: "button", "class": "btn" }, "Pause");
      var cancel = el("button", { type: "button", "class": "btn danger" }, "Cancel");
      var status = el("span", { "class": "upload-status muted" }, "Starting…");
      buttons.appendChild(pause);
      buttons.appendChild(cancel);
      [name, bar, buttons, status].forEach(function (n) { item.appendChild(n); });
      list.appendChild(item);

      var datasetId = null;
      var running = false;
      var upload = new tus.Upload(file, {
        endpoint: endpoint,
        chunkSize: CHUNK_BYTES,
        retryDelays: RETRY_DELAYS_MS,
        metadata: meta,
        headers: { "X-CSRFToken": csrf },
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        fingerprint: function (f) {
          var key = ["correli", endpoint, f.name, f.type, f.size, f.lastModified];
          LINKS.forEach(function (n) { key.push(meta[n] || ""); });
          return Promise.resolve(key.join("|"));
        },
        onProgress: function (sent, total) {
          var percent = total ? (100 * sent) / total : 100;
          bar.value = percent;
          status.textContent = formatBytes(sent) + " of " + formatBytes(total) + " (" + percent.toFixed(1) + " %)";
        },
        onAfterResponse: function (req, res) {
          var id = res.getHeader("CorreLi-Dataset-Id");
          if (id) datasetId = id;
        },
        onError: function (err) {
          running = false;
          item.classList.add("failed");
          pause.textContent = "Retry";
          status.textContent = "Upload failed: " + errorMessage(err);
        },
        onSuccess: function () {
          running = false;
          bar.value = 100;
          buttons.remove();
          status.textContent = "Received; checking the format…";
          fetch(upload.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
            .then(function (r) { return r.json(); })
            .then(function (state) {
              var id = state.dataset || datasetId;
              status.textContent = "";
              var link = el("a", { href: datasetUrl + id + "/" }, "dataset " + id);
              if (state.dataset_status === "rejected") {
                item.classList.add("rejected");
                status.appendChild(document.createTextNode("Rejected (kept as "));
                status.appendChild(link);
                status.appendChild(document.createTextNode("): " + state.dataset_status_message));
              } else {
                item.classList.add("done");
                status.appendChild(document.createTextNode("Ready: "));
                status.appendChild(link);
                status.appendChild(document.createTextNode(" · sha256 " + (state.dataset_sha256 || "").slice(0, 16) + "…"));
                if (state.dataset_status_message) {  // what the format check found
                  status.appendChild(el("div", { class: "found" }, state.dataset_status_message));
                }
              }
              item.dataset.datasetId = id;
              showUnfinished();
            })
            .catch(function () { status.textContent = "Stored as dataset " + datasetId; });
        },
      });

      function go() {
        running = true;
        item.classList.remove("failed");
        pause.textContent = "Pause";
        upload.start();
      }
      pause.addEventListener("click", function () {
        if (running) {
          running = false;
          upload.abort();
          pause.textContent = "Resume";
          status.textContent = "Paused at " + bar.value.toFixed(1) + " %";
        } else {
          go();
        }
      });
      cancel.addEventListener("click", function () {
        running = false;
        upload.abort(true).then(function () {
          item.remove();
          showUnfinished();
        }, function (err) { status.textContent = "Could not cancel: " + errorMessage(err); });
      });

      upload.findPreviousUploads().then(function (previous) {
        if (previous.length) {
          upload.resumeFromPreviousUpload(previous[0]);
          status.textContent = "Resuming an earlier upload of this file…";
        }
        go();
      });
    }

    function addFiles(files) {
      Array.prototype.forEach.call(files, start);
    }
    zone.addEventListener("click", function (e) { if (e.target !== input) input.click(); });
    zone.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
    });
    input.addEventListener("change", function () { addFiles(input.files); input.value = ""; });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("dragover"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.remove("dragover"); });
    });
    zone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files) addFiles(e.dataTransfer.files);
    });
    showUnfinished();
  }

  function boot() {
    if (!window.tus || !tus.isSupported) return;
    document.querySelectorAll(".upload-widget").forEach(init);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
