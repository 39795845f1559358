#pragma once

#include <string_view>

namespace sluice::api {

// The API document and the docs page, embedded at build time (src/api/openapi/, written by
// hand and checked in; embed_api_document.cpp turns them into a source file). The JSON is the
// YAML converted at build time, so the two never differ.
std::string_view api_document_yaml() noexcept;
std::string_view api_document_json() noexcept;
// /docs: a page of our own and its script, which renders /openapi.json in the browser.
std::string_view docs_page_html() noexcept;
std::string_view docs_page_script() noexcept;

}  // namespace sluice::api
