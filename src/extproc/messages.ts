/**
 * TypeScript shapes of the ext_proc messages as @grpc/proto-loader hands them over with
 * { keepCase: true, oneofs: true, longs: String, enums: String, bytes: Buffer } — only the
 * fields prefix-router reads or writes. Field numbers live in proto/ (checked against Envoy's).
 */

export interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer;
}

export interface HeaderMap {
  headers?: HeaderValue[];
}

export type HeaderAppendAction = "APPEND_IF_EXISTS_OR_ADD" | "ADD_IF_ABSENT" | "OVERWRITE_IF_EXISTS_OR_ADD" | "OVERWRITE_IF_EXISTS";

export interface HeaderValueOption {
  header: HeaderValue;
  append_action?: HeaderAppendAction;
}

export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}

export interface HttpHeaders {
  headers?: HeaderMap;
  end_of_stream?: boolean;
}

export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}

export interface HttpTrailers {
  trailers?: HeaderMap;
}

/** google.protobuf.Value / Struct in proto-loader's object form: protobufjs bundles these well-known types with camelCase field names, whatever keepCase says. */
export interface StructValue {
  nullValue?: "NULL_VALUE";
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: Struct;
  listValue?: { values?: StructValue[] };
  kind?: string;
}

export interface Struct {
  fields?: Record<string, StructValue>;
}

export type BodySendMode = "NONE" | "STREAMED" | "BUFFERED" | "BUFFERED_PARTIAL" | "FULL_DUPLEX_STREAMED";

export interface ProcessingRequest {
  request?: "request_headers" | "response_headers" | "request_body" | "response_body" | "request_trailers" | "response_trailers";
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  metadata_context?: { filter_metadata?: Record<string, Struct> };
  /** CEL attributes the filter was configured to send (request_attributes / response_attributes), keyed by filter name. */
  attributes?: Record<string, Struct>;
  observability_mode?: boolean;
  protocol_config?: { request_body_mode?: BodySendMode; response_body_mode?: BodySendMode; send_body_without_waiting_for_header_response?: boolean };
}

export interface StreamedBodyResponse {
  body: Buffer;
  end_of_stream: boolean;
}

export interface CommonResponse {
  status?: "CONTINUE" | "CONTINUE_AND_REPLACE";
  header_mutation?: HeaderMutation;
  body_mutation?: { body?: Buffer; clear_body?: boolean; streamed_response?: StreamedBodyResponse };
  clear_route_cache?: boolean;
}

export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body?: Buffer;
  details?: string;
}

export interface ProcessingResponse {
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: ImmediateResponse;
  dynamic_metadata?: Struct;
}
