// Passkeys (WebAuthn) for the forms marked data-passkey="register" or "sign-in": on submit,
// ask the portal for the ceremony's options (data-options), let the browser make or use a
// passkey, put its answer in the form's hidden "credential" field and send the form whole.
(function () {
  "use strict";

  function bytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var result = new Uint8Array(binary.length);
    for (var index = 0; index < binary.length; index += 1) { result[index] = binary.charCodeAt(index); }
    return result.buffer;
  }

  function base64url(buffer) {
    var binary = "";
    new Uint8Array(buffer).forEach(function (value) { binary += String.fromCharCode(value); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withBinaryIds(descriptors) {
    return (descriptors || []).map(function (descriptor) {
      return Object.assign({}, descriptor, {id: bytes(descriptor.id)});
    });
  }

  function creationOptions(options) {
    return Object.assign({}, options, {
      challenge: bytes(options.challenge),
      user: Object.assign({}, options.user, {id: bytes(options.user.id)}),
      excludeCredentials: withBinaryIds(options.excludeCredentials)
    });
  }

  function requestOptions(options) {
    return Object.assign({}, options, {
      challenge: bytes(options.challenge),
      allowCredentials: withBinaryIds(options.allowCredentials)
    });
  }

  function answer(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: base64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {clientDataJSON: base64url(response.clientDataJSON)}
    };
    if (response.attestationObject) {
      json.response.attestationObject = base64url(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = base64url(response.authenticatorData);
      json.response.signature = base64url(response.signature);
      json.response.userHandle = response.userHandle ? base64url(response.userHandle) : null;
    }
    return JSON.stringify(json);
  }

  function say(form, text) {
    var status = form.querySelector("[data-passkey-status]");
    if (status) { status.textContent = text; }
  }

  function run(form) {
    var registering = form.getAttribute("data-passkey") === "register";
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(form, "Waiting for your passkey…");
    fetch(form.getAttribute("data-options"), {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRFToken": form.querySelector("input[name=csrf_token]").value, "Accept": "application/json"}
    }).then(function (reply) {
      return reply.json().catch(function () {
        throw new Error("The portal did not answer as expected. Reload the page and try again.");
      });
    }).then(function (reply) {
      if (reply.redirect) { window.location.assign(reply.redirect); return null; }
      if (reply.error) { throw new Error(reply.error); }
      return registering
        ? navigator.credentials.create({publicKey: creationOptions(reply.publicKey)})
        : navigator.credentials.get({publicKey: requestOptions(reply.publicKey)});
    }).then(function (credential) {
      if (!credential) { return; }
      form.querySelector("input[name=credential]").value = answer(credential);
      say(form, "Checking…");
      // A plain submission: the answer page is loaded whole, as without htmx.
      HTMLFormElement.prototype.submit.call(form);
    }).catch(function (error) {
      button.disabled = false;
      say(form, error && error.name === "NotAllowedError"
        ? "The passkey was not used (cancelled, or timed out). Try again."
        : (error && error.message) || "The passkey could not be used.");
    });
  }

  // Capturing, so that htmx's boosted submission of the same form never starts.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-passkey]")) { return; }
    event.preventDefault();
    event.stopPropagation();
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form, "This browser cannot use passkeys.");
      return;
    }
    run(form);
  }, true);
})();
