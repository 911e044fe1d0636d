"use strict";
// The try-it page: a small EHR. It sends a real hook call to /cds-services/{id}, renders the
// cards (indicator, summary, Markdown detail, source, suggestions, links, override reasons),
// sends CDS Hooks 2.0 feedback, and shows the explanation and exposure chart from
// /preview/api/explain/{id}. Everything it shows is built with textContent or the escaping
// Markdown renderer.
(function () {
  const $ = (id) => document.getElementById(id);
  let discovery = [];
  let runs = 0;

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function setStatus(text, error) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("error", Boolean(error));
  }

  async function fetchJSON(url, options) {
    const response = await fetch(url, options);
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const issue = body && body.issue && body.issue[0];
      const why = issue ? issue.diagnostics || issue.code : response.statusText;
      throw new Error(`${response.status} ${why}`);
    }
    return body;
  }

  function post(url, body) {
    return fetchJSON(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  function serviceFor(hook) {
    const found = discovery.find((s) => s.hook === hook);
    if (!found) throw new Error(`no service answers the hook ${hook}`);
    return found.id;
  }

  // ---- feedback -------------------------------------------------------------------------

  async function sendFeedback(serviceId, cardNode, entry, done) {
    entry.outcomeTimestamp = new Date().toISOString();
    const status = cardNode.querySelector(".feedback-status");
    for (const control of cardNode.querySelectorAll("button, select")) control.disabled = true;
    try {
      await post(`/cds-services/${encodeURIComponent(serviceId)}/feedback`, { feedback: [entry] });
      cardNode.classList.add("answered");
      status.textContent = `${done}. Feedback sent; run again to see what the service does with it.`;
    } catch (error) {
      status.textContent = `Feedback failed: ${error.message}`;
      for (const control of cardNode.querySelectorAll("button, select")) control.disabled = false;
    }
  }

  // ---- cards ----------------------------------------------------------------------------

  function renderCard(serviceId, card) {
    const node = make("article", `card indicator-${card.indicator}`);
    const topic = card.source && card.source.topic ? card.source.topic.code || "" : "";
    node.dataset.topic = topic;
    node.dataset.indicator = card.indicator;
    node.dataset.uuid = card.uuid || "";

    const head = make("header");
    head.appendChild(make("span", "badge", card.indicator));
    head.appendChild(make("h3", "summary", card.summary));
    node.appendChild(head);

    if (card.detail) {
      const detail = make("div", "detail");
      detail.innerHTML = window.PreviewMarkdown.render(card.detail); // escaped first
      node.appendChild(detail);
    }

    if (card.source) {
      const source = make("p", "source", "Source: ");
      const url = safeUrl(card.source.url);
      if (url) {
        const a = make("a", "", card.source.label);
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        source.appendChild(a);
      } else {
        source.appendChild(document.createTextNode(card.source.label || ""));
      }
      node.appendChild(source);
    }

    const suggestions = card.suggestions || [];
    if (suggestions.length) {
      const box = make("div", "suggestions");
      for (const suggestion of suggestions) {
        const button = make("button", suggestion.isRecommended ? "suggestion recommended" : "suggestion", suggestion.label);
        button.type = "button";
        const actions = (suggestion.actions || []).map((a) => a.description || a.type).filter(Boolean);
        if (actions.length) button.title = actions.join("; ");
        button.addEventListener("click", () => {
          const created = (suggestion.actions || [])
            .map((a) => (a.resource && a.resource.resourceType ? `${a.type} ${a.resource.resourceType}` : a.type))
            .join(", ");
          sendFeedback(serviceId, node, {
            card: card.uuid,
            outcome: "accepted",
            acceptedSuggestions: [{ id: suggestion.uuid }],
          }, `Accepted "${suggestion.label}"${created ? ` (an EHR would ${created})` : ""}`);
        });
        box.appendChild(button);
      }
      node.appendChild(box);
    }

    const links = card.links || [];
    if (links.length) {
      const list = make("ul", "links");
      for (const link of links) {
        const item = make("li");
        const url = safeUrl(link.url);
        if (url) {
          const a = make("a", "", link.label + (link.type === "smart" ? " (SMART app)" : ""));
          a.href = url;
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          item.appendChild(a);
        } else {
          item.textContent = link.label;
        }
        list.appendChild(item);
      }
      node.appendChild(list);
    }

    const reasons = card.overrideReasons || [];
    const dismiss = make("div", "override");
    const select = make("select", "override-reason");
    select.setAttribute("aria-label", "Override reason");
    select.appendChild(new Option("(no reason)", ""));
    reasons.forEach((reason, i) => {
      const option = new Option(reason.display || reason.code, String(i));
      option.dataset.code = reason.code || "";
      select.appendChild(option);
    });
    const button = make("button", "override-button", "Dismiss with reason");
    button.type = "button";
    button.addEventListener("click", () => {
      const entry = { card: card.uuid, outcome: "overridden" };
      const chosen = select.value === "" ? null : reasons[Number(select.value)];
      if (chosen) entry.overrideReason = { reason: { system: chosen.system, code: chosen.code, display: chosen.display } };
      sendFeedback(serviceId, node, entry, chosen ? `Overridden: ${chosen.display || chosen.code}` : "Overridden");
    });
    dismiss.appendChild(select);
    dismiss.appendChild(button);
    node.appendChild(dismiss);
    node.appendChild(make("p", "feedback-status"));
    return node;
  }

  function renderCards(serviceId, response) {
    const box = $("cards");
    box.replaceChildren();
    const cards = (response && response.cards) || [];
    if (!cards.length) box.appendChild(make("p", "empty", "No cards: nothing to flag for this call."));
    for (const card of cards) box.appendChild(renderCard(serviceId, card));
    return cards.length;
  }

  function renderExplanation(explained) {
    const snoozed = explained.explanation.snoozed_topics || [];
    const note = $("snoozed");
    note.hidden = !snoozed.length;
    note.textContent = snoozed.length ? `Snoozed for this patient: ${snoozed.join(", ")}` : "";
    note.dataset.topics = snoozed.join(" ");
    $("explanation").textContent = explained.text;
  }

  // ---- running a call -------------------------------------------------------------------

  async function run() {
    let request;
    try {
      request = JSON.parse($("request-json").value);
    } catch (e) {
      setStatus("The request is not valid JSON.", true);
      return;
    }
    if (!request || typeof request !== "object" || typeof request.hook !== "string") {
      setStatus("The request needs a hook.", true);
      return;
    }
    request.hookInstance = uuid4(); // each run is a new hook call
    document.body.dataset.busy = "true";
    setStatus("Calling the service...");
    try {
      const id = serviceFor(request.hook);
      // The explanation first: it reads the same snoozes as the hook call and records nothing.
      const explained = await post(`/preview/api/explain/${encodeURIComponent(id)}`, request);
      const response = await post(`/cds-services/${encodeURIComponent(id)}`, request);
      const count = renderCards(id, response);
      window.PreviewChart.draw($("chart"), explained.chart);
      renderExplanation(explained);
      setStatus(`${count} card${count === 1 ? "" : "s"} from ${id} (${request.hook}).`);
    } catch (error) {
      setStatus(`The call failed: ${error.message}`, true);
    } finally {
      runs += 1;
      document.body.dataset.runs = String(runs);
      document.body.dataset.busy = "false";
    }
  }

  async function loadFixture(name) {
    if (!name) return false;
    try {
      const body = await fetchJSON(`/preview/api/fixtures/${encodeURIComponent(name)}`);
      $("request-json").value = JSON.stringify(body, null, 2);
      return true;
    } catch (error) {
      setStatus(`No bundled case ${name}: ${error.message}`, true);
      return false;
    }
  }

  function fromFhirServer() {
    const server = $("fhir-server").value.trim();
    const patient = $("patient-id").value.trim();
    if (!server || !patient) {
      setStatus("Give a FHIR server URL and a patient id.", true);
      return;
    }
    const request = {
      hook: "patient-view",
      hookInstance: uuid4(),
      fhirServer: server,
      context: { userId: "Practitioner/preview", patientId: patient },
    };
    $("request-json").value = JSON.stringify(request, null, 2);
    run();
  }

  async function start() {
    try {
      discovery = (await fetchJSON("/cds-services")).services || [];
      const listing = (await fetchJSON("/preview/api/fixtures")).fixtures || [];
      const select = $("fixture");
      for (const fixture of listing) {
        select.appendChild(new Option(`${fixture.name} (${fixture.hook})`, fixture.name));
      }
    } catch (error) {
      setStatus(`Could not read the service: ${error.message}`, true);
      return;
    }
    $("fixture").addEventListener("change", async (event) => {
      if (await loadFixture(event.target.value)) run();
    });
    $("run").addEventListener("click", run);
    $("run-fhir").addEventListener("click", fromFhirServer);
    const wanted = new URLSearchParams(window.location.search).get("fixture");
    document.body.dataset.ready = "true";
    if (wanted) {
      $("fixture").value = wanted;
      if (await loadFixture(wanted)) await run();
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
