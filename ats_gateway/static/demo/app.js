/* Demo career site for the ATS gateway: plain JavaScript, no build step, no dependencies.
 *
 * Everything here is what a customer's own career site would do with the public API:
 *   GET  /v1/jobs, /v1/jobs/facets, /v1/jobs/{id}     (publishable key, cross-origin)
 *   GET  /v1/schemas/application                     (renders and pre-validates the form)
 *   GET  /v1/form-token                               (anti-abuse token + honeypot name)
 *   POST /v1/applications                             (multipart with the resume)
 *   GET  status_url                                   (until delivered)
 * The only values a site configures are the gateway URL and its publishable key; this demo
 * reads both from /demo/config.json.
 */
(function () {
  "use strict";

  var FACETS = [
    ["department", "Department"],
    ["employment_type", "Employment type"],
    ["workplace_type", "Workplace"],
    ["country", "Country"],
    ["city", "City"],
  ];
  var SORTS = [
    ["-posted_at", "Newest first"],
    ["posted_at", "Oldest first"],
    ["title", "Title, A to Z"],
    ["-salary_max", "Highest salary"],
  ];
  var PAGE_SIZE = 10;
  var FINAL = { delivered: true, failed: true, duplicate: true };
  var STEPS = ["queued", "delivering", "delivered"];

  var config = null;
  var schemaPromise = null;
  var pageCursors = {}; // list query (without cursor) -> cursors of pages 1..n
  var pollTimer = null;
  var app = document.getElementById("app");

  // ------------------------------------------------------------------ small helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(nodes) {
    if (pollTimer) {
      clearTimeout(pollTimer);
      pollTimer = null;
    }
    clear(app);
    nodes.forEach(function (n) {
      if (n) app.appendChild(n);
    });
  }

  function humanize(name) {
    return name.replace(/_/g, " ").replace(/^./, function (c) {
      return c.toUpperCase();
    });
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function formatSalary(job) {
    if (job.salary_min == null && job.salary_max == null) return "";
    var fmt;
    try {
      fmt = new Intl.NumberFormat("en", {
        style: "currency",
        currency: job.salary_currency || "USD",
        maximumFractionDigits: 0,
      });
    } catch (e) {
      fmt = new Intl.NumberFormat("en");
    }
    var parts = [job.salary_min, job.salary_max].filter(function (v) {
      return v != null;
    });
    var period = job.salary_period ? " (" + job.salary_period.toLowerCase() + ")" : "";
    return parts.map(fmt.format).join(" to ") + period;
  }

  function formatDate(value) {
    if (!value) return "";
    var date = new Date(value.length === 10 ? value + "T00:00:00" : value);
    if (isNaN(date)) return value;
    return date.toLocaleDateString("en", { year: "numeric", month: "short", day: "numeric" });
  }

  function jobLocation(job) {
    return [job.city, job.state, job.country].filter(Boolean).join(", ");
  }

  // Job descriptions are rich text from the org: keep a small set of tags, drop the rest.
  var ALLOWED = { P: 1, H2: 1, H3: 1, H4: 1, UL: 1, OL: 1, LI: 1, STRONG: 1, EM: 1, B: 1, I: 1, BR: 1, A: 1 };

  function sanitized(html) {
    var doc = new DOMParser().parseFromString("<div>" + (html || "") + "</div>", "text/html");
    var out = document.createDocumentFragment();
    function copy(source, target) {
      Array.prototype.forEach.call(source.childNodes, function (child) {
        if (child.nodeType === Node.TEXT_NODE) {
          target.appendChild(document.createTextNode(child.textContent));
        } else if (child.nodeType === Node.ELEMENT_NODE) {
          if (!ALLOWED[child.tagName]) {
            copy(child, target);
            return;
          }
          var clean = document.createElement(child.tagName.toLowerCase());
          if (child.tagName === "A") {
            var href = child.getAttribute("href") || "";
            if (/^https?:\/\//i.test(href)) {
              clean.setAttribute("href", href);
              clean.setAttribute("rel", "noopener noreferrer");
              clean.setAttribute("target", "_blank");
            }
          }
          copy(child, clean);
          target.appendChild(clean);
        }
      });
    }
    copy(doc.body.firstChild, out);
    return out;
  }

  // ------------------------------------------------------------------ the API

  function ApiError(status, problem) {
    this.status = status;
    this.problem = problem || {};
    this.message = (problem && (problem.detail || problem.title)) || "HTTP " + status;
  }

  function apiUrl(path) {
    return /^https?:\/\//.test(path) ? path : config.api_base + path;
  }

  function api(path, options) {
    options = options || {};
    var headers = Object.assign(
      options.anonymous ? {} : { Authorization: "Bearer " + config.publishable_key },
      options.headers
    );
    return fetch(apiUrl(path), {
      method: options.method || "GET",
      headers: headers,
      body: options.body,
      mode: "cors",
      credentials: "omit",
    }).then(
      function (response) {
        var type = response.headers.get("Content-Type") || "";
        var parsed = /json/.test(type) ? response.json() : Promise.resolve(null);
        return parsed.then(function (body) {
          if (!response.ok) {
            var error = new ApiError(response.status, body);
            error.retryAfter = response.headers.get("Retry-After");
            throw error;
          }
          return body;
        });
      },
      function () {
        throw new ApiError(0, { detail: "The gateway cannot be reached." });
      }
    );
  }

  function loadSchema() {
    if (!schemaPromise) {
      // A public document: no key, so a plain GET (no CORS preflight).
      schemaPromise = api("/v1/schemas/application", { anonymous: true }).catch(function (error) {
        schemaPromise = null;
        throw error;
      });
    }
    return schemaPromise;
  }

  function errorBox(error) {
    return el("div", { className: "notice error", role: "alert" }, [
      el("strong", { text: error.problem.title || "Something went wrong" }),
      el("p", { text: error.message }),
    ]);
  }

  // ------------------------------------------------------------------ routing

  function parseHash() {
    var hash = window.location.hash.replace(/^#/, "") || "/";
    var qmark = hash.indexOf("?");
    var path = qmark >= 0 ? hash.slice(0, qmark) : hash;
    var params = new URLSearchParams(qmark >= 0 ? hash.slice(qmark + 1) : "");
    return { path: path, params: params };
  }

  function route() {
    var r = parseHash();
    var m;
    if ((m = r.path.match(/^\/jobs\/([A-Za-z0-9]+)\/apply$/))) return applyView(m[1]);
    if ((m = r.path.match(/^\/jobs\/([A-Za-z0-9]+)$/))) return jobView(m[1]);
    if ((m = r.path.match(/^\/applications\/([A-Za-z0-9]+)$/))) return statusView(m[1]);
    return listView(r.params);
  }

  // ------------------------------------------------------------------ job list

  function listQuery(params) {
    var query = new URLSearchParams();
    var q = (params.get("q") || "").trim();
    if (q) query.set("q", q);
    FACETS.forEach(function (facet) {
      params.getAll(facet[0]).forEach(function (v) {
        query.append(facet[0], v);
      });
    });
    return query;
  }

  function goList(params) {
    var text = params.toString();
    window.location.hash = "#/" + (text ? "?" + text : "");
  }

  function listView(params) {
    var filters = listQuery(params);
    var sort = params.get("sort") || SORTS[0][0];
    var page = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
    var cursor = params.get("cursor") || "";
    var stackKey = filters.toString() + "|" + sort;
    var cursors = pageCursors[stackKey] || (pageCursors[stackKey] = [""]);
    if (!cursor) page = 1;

    var listQueryString = new URLSearchParams(filters);
    listQueryString.set("sort", sort);
    listQueryString.set("limit", String(PAGE_SIZE));
    if (cursor) listQueryString.set("cursor", cursor);

    var searchInput = el("input", {
      type: "search",
      id: "search-q",
      name: "q",
      value: params.get("q") || "",
      placeholder: "Job title or keyword",
      "aria-label": "Search jobs",
    });
    var searchForm = el("form", { className: "search", role: "search", id: "search-form" }, [
      searchInput,
      el("button", { type: "submit", className: "button primary", text: "Search" }),
    ]);
    searchForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var next = new URLSearchParams(filters);
      next.delete("q");
      if (searchInput.value.trim()) next.set("q", searchInput.value.trim());
      if (sort !== SORTS[0][0]) next.set("sort", sort);
      goList(next);
    });

    var sidebar = el("aside", { className: "filters", "aria-label": "Filters" }, [
      el("p", { className: "muted", text: "Loading filters…" }),
    ]);
    var results = el("section", { className: "results", "aria-live": "polite", id: "results" }, [
      el("p", { className: "muted", text: "Loading jobs…" }),
    ]);

    show([
      el("section", { className: "hero" }, [
        el("h1", { text: "Find your next role" }),
        el("p", { className: "muted", text: "Open positions, straight from our applicant tracking system." }),
        searchForm,
      ]),
      el("div", { className: "layout" }, [sidebar, results]),
    ]);

    var jobsRequest = api("/v1/jobs?" + listQueryString.toString());
    var facetsRequest = api("/v1/jobs/facets?" + filters.toString());

    facetsRequest.then(
      function (body) {
        renderFacets(sidebar, body.data || {}, filters, sort);
      },
      function (error) {
        clear(sidebar);
        sidebar.appendChild(errorBox(error));
      }
    );

    jobsRequest.then(
      function (body) {
        cursors[page - 1] = cursor;
        renderResults(results, body, {
          filters: filters,
          sort: sort,
          page: page,
          cursors: cursors,
        });
      },
      function (error) {
        clear(results);
        results.appendChild(errorBox(error));
      }
    );
  }

  function renderFacets(sidebar, facets, filters, sort) {
    clear(sidebar);
    var anyChecked = false;
    var active = FACETS.reduce(function (n, facet) {
      return n + filters.getAll(facet[0]).length;
    }, 0);
    // On a phone the filters fold away (open when some are active); on a desktop they show.
    var folded = window.matchMedia("(max-width: 760px)").matches && !active;
    var details = el("details", { className: "facets", open: !folded }, [
      el("summary", { text: active ? "Filters (" + active + " active)" : "Filters" }),
    ]);
    FACETS.forEach(function (facet) {
      var name = facet[0];
      var values = facets[name] || [];
      var chosen = filters.getAll(name);
      if (!values.length && !chosen.length) return;
      var list = el("ul", { className: "facet-values" });
      var seen = {};
      values.forEach(function (item) {
        seen[item.value] = true;
        list.appendChild(facetOption(name, item.value, item.count, chosen, filters, sort));
      });
      chosen.forEach(function (value) {
        if (!seen[value]) list.appendChild(facetOption(name, value, 0, chosen, filters, sort));
      });
      if (chosen.length) anyChecked = true;
      details.appendChild(
        el("fieldset", { className: "facet", "data-facet": name }, [
          el("legend", { text: facet[1] }),
          list,
        ])
      );
    });
    var sortSelect = el(
      "select",
      { id: "sort", name: "sort" },
      SORTS.map(function (s) {
        return el("option", { value: s[0], text: s[1], selected: s[0] === sort });
      })
    );
    sortSelect.addEventListener("change", function () {
      var next = new URLSearchParams(filters);
      next.set("sort", sortSelect.value);
      goList(next);
    });
    sidebar.appendChild(
      el("div", { className: "sort" }, [el("label", { for: "sort", text: "Sort by" }), sortSelect])
    );
    sidebar.appendChild(details);
    if (anyChecked || filters.get("q")) {
      sidebar.appendChild(
        el("a", { href: "#/", className: "clear-filters", id: "clear-filters", text: "Clear all filters" })
      );
    }
  }

  function facetOption(name, value, count, chosen, filters, sort) {
    var id = "facet-" + name + "-" + String(value).replace(/[^A-Za-z0-9]+/g, "-");
    var checked = chosen.indexOf(String(value)) >= 0;
    var box = el("input", { type: "checkbox", id: id, name: name, value: value, checked: checked });
    box.addEventListener("change", function () {
      var next = new URLSearchParams();
      filters.forEach(function (v, k) {
        if (!(k === name && v === String(value))) next.append(k, v);
      });
      if (box.checked) next.append(name, String(value));
      if (sort !== SORTS[0][0]) next.set("sort", sort);
      goList(next);
    });
    return el("li", {}, [
      box,
      el("label", { for: id }, [String(value), " ", el("span", { className: "count", text: "(" + count + ")" })]),
    ]);
  }

  function renderResults(results, body, ctx) {
    clear(results);
    var total = body.meta ? body.meta.total : body.data.length;
    results.appendChild(
      el("p", { className: "result-count", id: "result-count", "data-total": total }, [
        total === 1 ? "1 open job" : total + " open jobs",
      ])
    );
    if (!body.data.length) {
      results.appendChild(el("p", { className: "notice", text: "No jobs match these filters." }));
      return;
    }
    var list = el("ol", { className: "job-list", id: "job-list" });
    body.data.forEach(function (job) {
      list.appendChild(jobCard(job));
    });
    results.appendChild(list);

    var base = new URLSearchParams(ctx.filters);
    if (ctx.sort !== SORTS[0][0]) base.set("sort", ctx.sort);
    var pager = el("nav", { className: "pager", "aria-label": "Pages" });
    if (ctx.page > 1) {
      var prev = new URLSearchParams(base);
      var prevCursor = ctx.cursors[ctx.page - 2] || "";
      if (prevCursor) {
        prev.set("cursor", prevCursor);
        prev.set("page", String(ctx.page - 1));
      }
      pager.appendChild(
        el("a", { className: "button", id: "prev-page", href: "#/?" + prev.toString(), text: "← Previous" })
      );
    }
    var pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    pager.appendChild(
      el("span", { className: "page-number", id: "page-number", text: "Page " + ctx.page + " of " + pages })
    );
    if (body.page && body.page.next_cursor) {
      var next = new URLSearchParams(base);
      next.set("cursor", body.page.next_cursor);
      next.set("page", String(ctx.page + 1));
      ctx.cursors[ctx.page] = body.page.next_cursor;
      pager.appendChild(
        el("a", { className: "button", id: "next-page", href: "#/?" + next.toString(), text: "Next →" })
      );
    }
    results.appendChild(pager);
  }

  function jobCard(job) {
    var tags = [job.department, job.employment_type, job.workplace_type].filter(Boolean);
    return el("li", { className: "job-card", "data-job-id": job.id }, [
      el("h2", {}, [el("a", { href: "#/jobs/" + job.id, className: "job-title", text: job.title || job.name })]),
      el("p", { className: "job-meta" }, [
        el("span", { className: "job-location", text: jobLocation(job) }),
        job.posted_at ? el("span", { className: "muted", text: " · posted " + formatDate(job.posted_at) }) : null,
      ]),
      el(
        "ul",
        { className: "tags" },
        tags.map(function (t, i) {
          return el("li", { className: "tag", "data-tag": ["department", "employment_type", "workplace_type"][i], text: t });
        })
      ),
      formatSalary(job) ? el("p", { className: "salary", text: formatSalary(job) }) : null,
    ]);
  }

  // ------------------------------------------------------------------ one job

  function jobView(jobId) {
    show([el("p", { className: "muted", text: "Loading the job…" })]);
    api("/v1/jobs/" + encodeURIComponent(jobId)).then(
      function (body) {
        var job = body.data;
        document.title = (job.title || job.name) + " · Redwood Careers";
        show([
          el("p", {}, [el("a", { href: "#/", className: "back", text: "← All jobs" })]),
          el("article", { className: "job" }, [
            el("header", { className: "job-header" }, [
              el("h1", { id: "job-title", text: job.title || job.name }),
              el("p", { className: "job-meta" }, [jobLocation(job)]),
              el(
                "ul",
                { className: "tags" },
                [job.department, job.employment_type, job.workplace_type].filter(Boolean).map(function (t) {
                  return el("li", { className: "tag", text: t });
                })
              ),
              formatSalary(job) ? el("p", { className: "salary", text: formatSalary(job) }) : null,
              el("dl", { className: "dates" }, [
                el("dt", { text: "Posted" }),
                el("dd", { text: formatDate(job.posted_at) || "—" }),
                el("dt", { text: "Closes" }),
                el("dd", { text: formatDate(job.closes_at) || "Open until filled" }),
              ]),
              el("a", { href: "#/jobs/" + job.id + "/apply", className: "button primary", id: "apply-link", text: "Apply now" }),
            ]),
            el("div", { className: "description" }, [sanitized(job.description)]),
            el("p", {}, [el("a", { href: "#/jobs/" + job.id + "/apply", className: "button primary", text: "Apply for this job" })]),
          ]),
        ]);
      },
      function (error) {
        var notFound = error.status === 404;
        show([
          el("p", {}, [el("a", { href: "#/", className: "back", text: "← All jobs" })]),
          notFound
            ? el("div", { className: "notice" }, [
                el("h1", { text: "This job is no longer open" }),
                el("p", { text: "It may have been filled or closed. Have a look at our other openings." }),
              ])
            : errorBox(error),
        ]);
      }
    );
  }

  // ------------------------------------------------------------------ apply

  function widgetFor(name, prop, required) {
    var id = "f-" + name;
    var types = [].concat(prop.type || "string");
    var attrs = {
      id: id,
      name: name,
      "aria-describedby": id + "-error",
      "aria-required": required ? "true" : null,
    };
    if (types.indexOf("boolean") >= 0) {
      return el("input", Object.assign(attrs, { type: "checkbox", value: "true" }));
    }
    if (prop.enum) {
      var options = [el("option", { value: "", text: "Choose…" })].concat(
        prop.enum
          .filter(function (v) {
            return v !== null;
          })
          .map(function (v) {
            return el("option", { value: v, text: v });
          })
      );
      return el("select", attrs, options);
    }
    if (name === "cover_letter" || (prop.maxLength && prop.maxLength > 1000)) {
      return el("textarea", Object.assign(attrs, { rows: 6 }));
    }
    var type = "text";
    if (prop.format === "email") type = "email";
    else if (prop.format === "uri") type = "url";
    else if (name === "phone") type = "tel";
    else if (types.indexOf("integer") >= 0 || types.indexOf("number") >= 0) type = "number";
    var autocomplete = {
      first_name: "given-name",
      last_name: "family-name",
      email: "email",
      phone: "tel",
    }[name];
    attrs.type = type;
    attrs.autocomplete = autocomplete || null;
    if (prop.examples) attrs.list = id + "-options";
    return el("input", attrs);
  }

  function fieldBlock(name, prop, required, widget, help) {
    var id = "f-" + name;
    var label = el("label", { for: id }, [
      prop.title || humanize(name),
      required ? el("span", { className: "required", "aria-hidden": "true", text: " *" }) : null,
    ]);
    var isCheckbox = widget.type === "checkbox";
    var children = isCheckbox
      ? [el("div", { className: "checkbox" }, [widget, label])]
      : [label, widget];
    if (prop.examples) {
      children.push(
        el(
          "datalist",
          { id: id + "-options" },
          prop.examples.map(function (v) {
            return el("option", { value: v });
          })
        )
      );
    }
    if (help) children.push(el("p", { className: "help", id: id + "-help", text: help }));
    children.push(el("p", { className: "field-error", id: id + "-error", role: "alert", hidden: true }));
    return el("div", { className: "field", "data-field": name }, children);
  }

  function helpFor(name, prop) {
    if (name === "consent") return "I agree that my application data is stored to assess my candidacy.";
    if (name === "phone") return "International format, e.g. +1 415 555 0100.";
    if (name === "linkedin_url") return "https://www.linkedin.com/in/…";
    if (prop.maxLength && prop.maxLength > 1000) return "Up to " + prop.maxLength.toLocaleString("en") + " characters.";
    return "";
  }

  function applyView(jobId) {
    show([el("p", { className: "muted", text: "Loading the application form…" })]);
    Promise.all([
      api("/v1/jobs/" + encodeURIComponent(jobId)),
      loadSchema(),
      api("/v1/form-token"),
    ]).then(
      function (results) {
        renderApplyForm(results[0].data, results[1], results[2]);
      },
      function (error) {
        show([
          el("p", {}, [el("a", { href: "#/", className: "back", text: "← All jobs" })]),
          error.status === 404
            ? el("div", { className: "notice" }, [el("h1", { text: "This job is no longer open" })])
            : errorBox(error),
        ]);
      }
    );
  }

  function renderApplyForm(job, schema, formInfo) {
    var properties = schema.properties || {};
    var required = schema.required || [];
    var resumeRule = schema["x-resume"] || null;
    var prevalidate = parseHash().params.get("prevalidate") !== "0";
    var renderedAt = Date.now();
    var idempotencyKey = randomId();
    var form = el("form", { className: "apply-form", id: "apply-form", novalidate: true });

    var order = Object.keys(properties).filter(function (n) {
      return n !== "job_id" && n !== "consent";
    });
    if (properties.consent) order.push("consent");
    order.forEach(function (name) {
      var prop = properties[name];
      var isRequired = required.indexOf(name) >= 0;
      var widget = widgetFor(name, prop, isRequired);
      if (name === "source" && widget.tagName === "INPUT") widget.value = "Career Site";
      form.appendChild(fieldBlock(name, prop, isRequired, widget, helpFor(name, prop)));
    });

    if (resumeRule) {
      var accept = (resumeRule.types || [])
        .map(function (t) {
          return "." + t;
        })
        .concat(resumeRule.media_types || [])
        .join(",");
      var resumeInput = el("input", {
        type: "file",
        id: "f-resume",
        name: "resume",
        accept: accept,
        "aria-describedby": "f-resume-help f-resume-error",
      });
      var mb = Math.round((resumeRule.max_bytes / 1048576) * 10) / 10;
      form.appendChild(
        fieldBlock(
          "resume",
          { title: "Resume" },
          false,
          resumeInput,
          (resumeRule.types || []).join(", ").toUpperCase() + ", up to " + mb + " MB."
        )
      );
    }

    // The honeypot: invisible to people, tempting to bots; the gateway refuses it filled in.
    var honeypotName = formInfo.honeypot_field || "homepage";
    form.appendChild(
      el("div", { className: "hp", "aria-hidden": "true" }, [
        el("label", { for: "f-hp", text: "Leave this empty" }),
        el("input", { type: "text", id: "f-hp", name: honeypotName, tabindex: "-1", autocomplete: "off" }),
      ])
    );

    var formError = el("div", { className: "form-error notice error", id: "form-error", role: "alert", hidden: true });
    var submit = el("button", { type: "submit", className: "button primary", id: "submit-application", text: "Submit application" });
    form.appendChild(formError);
    form.appendChild(el("div", { className: "actions" }, [submit]));

    show([
      el("p", {}, [el("a", { href: "#/jobs/" + job.id, className: "back", text: "← Back to the job" })]),
      el("section", { className: "apply" }, [
        el("h1", {}, ["Apply: ", el("span", { id: "apply-job-title", text: job.title || job.name })]),
        el("p", { className: "muted", text: jobLocation(job) + ". Fields marked * are required." }),
        form,
      ]),
    ]);

    var formToken = formInfo.form_token;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form, formError);
      var values = collect(form, properties);
      var errors = prevalidate ? validate(values, properties, required, resumeRule, form) : [];
      if (errors.length) {
        showErrors(form, formError, errors);
        return;
      }
      var body = new FormData();
      body.append("job_id", job.id);
      Object.keys(values).forEach(function (name) {
        var value = values[name];
        if (value === "" || value === null || value === undefined) return;
        body.append(name, typeof value === "boolean" ? String(value) : value);
      });
      var file = form.elements.resume && form.elements.resume.files[0];
      if (file) body.append("resume", file, file.name);
      body.append(honeypotName, form.elements[honeypotName].value);
      body.append("form_token", formToken);

      submit.disabled = true;
      submit.textContent = "Sending…";
      // The gateway refuses forms sent faster than a person can fill them in.
      var wait = Math.max(0, renderedAt + (formInfo.min_fill_seconds || 0) * 1000 + 250 - Date.now());
      setTimeout(function () {
        api("/v1/applications", {
          method: "POST",
          body: body,
          headers: { "Idempotency-Key": idempotencyKey },
        }).then(
          function (accepted) {
            sessionStorage.setItem("receipt_url:" + accepted.id, accepted.receipt_url || "");
            sessionStorage.setItem("job_title:" + accepted.id, job.title || job.name);
            window.location.hash = "#/applications/" + accepted.id;
          },
          function (error) {
            submit.disabled = false;
            submit.textContent = "Submit application";
            idempotencyKey = randomId(); // a corrected form is a new submission
            if (error.status === 400 && error.problem.reason) {
              // too fast, expired or reused form token: take a fresh one and ask again
              api("/v1/form-token").then(function (info) {
                formToken = info.form_token;
                renderedAt = Date.now();
              });
            }
            var fieldErrors = (error.problem.errors || []).map(function (e) {
              return { field: e.field, message: e.message };
            });
            if (fieldErrors.length) showErrors(form, formError, fieldErrors, error.problem.detail);
            else showFormError(formError, submitMessage(error));
          }
        );
      }, wait);
    });
  }

  function submitMessage(error) {
    if (error.status === 409) return error.message + " You have already applied for this job.";
    if (error.status === 429) return "Too many applications from here; try again in " + (error.retryAfter || "a few") + " seconds.";
    if (error.status === 400 && error.problem.reason) return error.message + " Please submit again.";
    return error.message;
  }

  function collect(form, properties) {
    var values = {};
    Object.keys(properties).forEach(function (name) {
      var input = form.elements[name];
      if (!input) return;
      if (input.type === "checkbox") values[name] = input.checked;
      else values[name] = input.value.trim();
    });
    return values;
  }

  var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

  // Pre-validation from the JSON Schema: required, lengths, patterns, formats, enums, resume.
  function validate(values, properties, required, resumeRule, form) {
    var errors = [];
    Object.keys(values).forEach(function (name) {
      var prop = properties[name];
      var value = values[name];
      var types = [].concat(prop.type || "string");
      if (types.indexOf("boolean") >= 0) {
        if (required.indexOf(name) >= 0 && value !== true) errors.push({ field: name, message: "Please tick this box." });
        return;
      }
      if (value === "") {
        if (required.indexOf(name) >= 0) errors.push({ field: name, message: "This field is required." });
        return;
      }
      if (prop.maxLength && value.length > prop.maxLength) {
        errors.push({ field: name, message: "At most " + prop.maxLength + " characters (now " + value.length + ")." });
        return;
      }
      if (prop.format === "email" && !EMAIL.test(value)) {
        errors.push({ field: name, message: "Enter an email address like name@example.com." });
        return;
      }
      if (prop.format === "uri") {
        var ok = false;
        try {
          ok = /^https?:$/.test(new URL(value).protocol);
        } catch (e) {
          ok = false;
        }
        if (!ok) {
          errors.push({ field: name, message: "Enter a full web address starting with https://." });
          return;
        }
      }
      if (prop.enum && prop.enum.indexOf(value) < 0) {
        errors.push({ field: name, message: "Choose one of the listed values." });
        return;
      }
      if (prop.pattern) {
        var re = null;
        try {
          re = new RegExp(prop.pattern);
        } catch (e) {
          re = null; // a pattern JavaScript cannot read: leave it to the gateway
        }
        if (re && !re.test(value)) errors.push({ field: name, message: "This does not look right; check the format." });
      }
    });
    var input = form.elements.resume;
    var file = input && input.files[0];
    if (resumeRule && file) {
      var ext = (file.name.split(".").pop() || "").toLowerCase();
      if ((resumeRule.types || []).indexOf(ext) < 0) {
        errors.push({ field: "resume", message: "Upload a " + resumeRule.types.join(", ").toUpperCase() + " file." });
      } else if (file.size > resumeRule.max_bytes) {
        errors.push({ field: "resume", message: "The file is larger than " + Math.round(resumeRule.max_bytes / 1048576) + " MB." });
      } else if (file.size === 0) {
        errors.push({ field: "resume", message: "The file is empty." });
      }
    }
    return errors;
  }

  function clearErrors(form, formError) {
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (p) {
      p.textContent = "";
      p.hidden = true;
    });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) {
      input.removeAttribute("aria-invalid");
    });
    Array.prototype.forEach.call(form.querySelectorAll(".field.invalid"), function (f) {
      f.classList.remove("invalid");
    });
    formError.hidden = true;
    clear(formError);
  }

  function showFormError(formError, message) {
    clear(formError);
    formError.appendChild(el("p", { text: message }));
    formError.hidden = false;
    formError.scrollIntoView({ block: "center" });
  }

  function showErrors(form, formError, errors, detail) {
    var first = null;
    var unplaced = [];
    errors.forEach(function (error) {
      var name = String(error.field || "").split(".")[0];
      var slot = document.getElementById("f-" + name + "-error");
      var input = document.getElementById("f-" + name);
      if (!slot || !input) {
        unplaced.push((error.field ? error.field + ": " : "") + error.message);
        return;
      }
      slot.textContent = slot.textContent ? slot.textContent + " " + error.message : error.message;
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      slot.parentNode.classList.add("invalid");
      first = first || input;
    });
    if (unplaced.length) showFormError(formError, (detail ? detail + " " : "") + unplaced.join(" "));
    if (first) first.focus();
  }

  // ------------------------------------------------------------------ application status

  function statusView(applicationId) {
    // The 202's receipt_url: the candidate's own capability URL (no key, no server relay).
    var receiptUrl = sessionStorage.getItem("receipt_url:" + applicationId);
    var jobTitle = sessionStorage.getItem("job_title:" + applicationId);
    var badge = el("p", {
      className: "status-badge",
      id: "application-status",
      "data-status": "queued",
      role: "status",
      "aria-live": "polite",
      text: "Submitted",
    });
    var steps = el(
      "ol",
      { className: "steps" },
      STEPS.map(function (step) {
        return el("li", { "data-step": step, text: { queued: "Received by the gateway", delivering: "Being delivered to our ATS", delivered: "Delivered to our ATS" }[step] });
      })
    );
    var details = el("div", { className: "status-details", id: "status-details" });
    show([
      el("section", { className: "status" }, [
        el("h1", { text: "Thank you for applying" }),
        jobTitle ? el("p", { className: "muted" }, ["Your application for ", el("strong", { text: jobTitle }), " has been received."]) : null,
        badge,
        steps,
        details,
        el("p", {}, [el("a", { href: "#/", className: "button", text: "Back to all jobs" })]),
      ]),
    ]);

    var delay = 500;

    function fetchStatus() {
      if (!receiptUrl) return Promise.reject(new ApiError(404, { detail: "This page was opened without its receipt link." }));
      return fetch(receiptUrl, { credentials: "omit", headers: { Accept: "application/json" } }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new ApiError(r.status, body);
          return body;
        });
      });
    }

    function render(record) {
      var status = record.status;
      badge.setAttribute("data-status", status);
      badge.textContent = { queued: "Queued", delivering: "Delivering", delivered: "Delivered", failed: "Failed", duplicate: "Already received" }[status] || status;
      var reached = STEPS.indexOf(status === "duplicate" ? "delivered" : status);
      Array.prototype.forEach.call(steps.children, function (li, index) {
        li.className = index < reached || status === "delivered" ? "done" : index === reached ? "current" : "";
      });
      clear(details);
      if (status === "delivered" || status === "duplicate") {
        details.appendChild(el("p", { text: "Our recruiting team can see your application now. We will be in touch." }));
        if (receiptUrl) {
          details.appendChild(el("p", { className: "muted small" }, [el("a", { id: "receipt-link", href: receiptUrl, text: "Your receipt (bookmark it to check later)" })]));
        }
      } else if (status === "failed") {
        details.appendChild(el("p", { className: "notice error", text: record.reason || "The application could not be delivered." }));
        (record.errors || []).forEach(function (e) {
          details.appendChild(el("p", { className: "muted", text: (e.field ? e.field + ": " : "") + e.message }));
        });
      } else if (record.last_error) {
        details.appendChild(el("p", { className: "muted", text: "Our ATS is busy; we keep trying (" + record.last_error.code + ")." }));
      }
    }

    function poll() {
      fetchStatus().then(
        function (record) {
          render(record);
          if (!FINAL[record.status]) {
            pollTimer = setTimeout(poll, delay);
            delay = Math.min(delay * 1.5, 5000);
          }
        },
        function (error) {
          clear(details);
          details.appendChild(errorBox(error));
          pollTimer = setTimeout(poll, 5000);
        }
      );
    }
    poll();
  }

  // ------------------------------------------------------------------ start

  window.addEventListener("hashchange", function () {
    route();
    app.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  });

  fetch("config.json", { credentials: "same-origin" })
    .then(function (r) {
      if (!r.ok) throw new Error("config.json: HTTP " + r.status);
      return r.json();
    })
    .then(
      function (body) {
        config = body;
        var docs = document.getElementById("docs-link");
        if (docs && config.docs_url) docs.href = config.docs_url;
        route();
      },
      function (error) {
        show([el("div", { className: "notice error", text: "Cannot load the demo's configuration: " + error.message })]);
      }
    );
})();
