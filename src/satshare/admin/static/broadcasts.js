// The broadcasts page: the segment picker shows only the fields its kind takes and the
// recipient count as it changes; the progress bars of broadcasts still on their way follow
// the server every 2 seconds. Plain script shipped with the panel (no build step, no CDN);
// without it the page still works: the draft shows its count, a reload shows the progress.
(function () {
  "use strict";

  const composer = document.getElementById("composer");
  if (composer) {
    const kind = composer.querySelector("#segment-kind");
    const count = composer.querySelector("#segment-count");
    const fields = composer.querySelectorAll("[data-field]");
    let asked = 0;

    const showFields = function () {
      const takes = (kind.selectedOptions[0].dataset.takes || "").split(" ");
      fields.forEach(function (wrapper) {
        wrapper.hidden = !takes.includes(wrapper.dataset.field);
      });
    };

    const recount = async function () {
      const query = new URLSearchParams({ kind: kind.value });
      fields.forEach(function (wrapper) {
        const input = wrapper.querySelector("input, select");
        if (!wrapper.hidden && input.value) query.set(input.name, input.value);
      });
      const mine = ++asked;
      try {
        const answer = await fetch(composer.dataset.countUrl + "?" + query, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        const body = await answer.json();
        if (mine !== asked) return; // a later choice is being counted
        count.textContent = answer.ok ? body.text : body.problem;
        count.className = "alert py-2 mb-0 " + (answer.ok ? "alert-info" : "alert-warning");
        count.dataset.recipients = answer.ok ? String(body.recipients) : "";
      } catch (error) {
        // The count is a convenience: the draft shows it in any case.
      }
    };

    kind.addEventListener("change", function () {
      showFields();
      recount();
    });
    fields.forEach(function (wrapper) {
      wrapper.querySelector("input, select").addEventListener("change", recount);
    });
    showFields();
    recount();
  }

  const table = document.getElementById("broadcasts");
  if (!table) return;

  const update = function (row, state) {
    const total = Math.max(state.recipients, state.sent + state.blocked + state.failed + state.pending);
    ["sent", "blocked", "failed", "pending"].forEach(function (part) {
      const figure = row.querySelector(".count-" + part);
      if (figure) figure.textContent = String(state[part]);
      const bar = row.querySelector(".bar-" + part);
      if (bar) bar.style.width = (total ? (100 * state[part]) / total : 0) + "%";
    });
    row.querySelector(".recipients").textContent = state.recipients.toLocaleString("en-US");
    row.querySelector(".broadcast-status").textContent = state.status_label;
    row.querySelectorAll("[data-while]").forEach(function (form) {
      form.hidden = !form.dataset.while.split(" ").includes(state.status);
    });
    row.dataset.live = state.live ? "1" : "0";
  };

  const poll = async function () {
    const rows = Array.from(table.querySelectorAll("tr[data-live='1']"));
    if (!rows.length) return;
    const ids = rows.map(function (row) { return row.dataset.broadcast; }).join(",");
    try {
      const answer = await fetch(table.dataset.progressUrl + "?ids=" + ids, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (answer.ok) {
        const states = await answer.json();
        rows.forEach(function (row) {
          const state = states[row.dataset.broadcast];
          if (state) update(row, state);
        });
      }
    } catch (error) {
      // The server may be restarting: try again at the next tick.
    }
    window.setTimeout(poll, 2000);
  };
  window.setTimeout(poll, 1000);
})();
