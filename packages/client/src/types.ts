import type { components, operations } from "./generated/openapi.js";

/*
 * The API's JSON shapes, named. Every one comes from the types generated from the service's OpenAPI
 * document (generated/openapi.ts), so the client cannot drift from the service.
 */

type Schemas = components["schemas"];

export type DeviceUpdate = Schemas["DeviceUpdate"];
export type IdentityKey = Schemas["IdentityKey"];
export type BoundKey = Schemas["BoundKey"];
export type IdentityKind = BoundKey["kind"];
export type CanonicalRecord = Schemas["CanonicalRecord"];
export type PublishResult = Schemas["PublishResult"];
export type PublishOutcome = PublishResult["outcome"];
export type ResolveResult = Schemas["ResolveResult"];
export type RejectedIdentifier = Schemas["RejectedIdentifier"];
export type Tombstone = Schemas["Tombstone"];
export type LookupRequest = Schemas["LookupRequest"];
export type LookupResult = Schemas["LookupResult"];
export type BatchLookupRequest = Schemas["BatchLookupRequest"];
export type CanonicalDevice = Schemas["CanonicalDevice"];
export type HistoryEntry = Schemas["HistoryEntry"];
export type HistoryPage = Schemas["HistoryReply"];
export type ListedDevice = Schemas["ListedDevice"];
export type DeviceList = Schemas["DeviceList"];
export type ApiErrorBody = Schemas["Error"];
/** Who held an identifier at a time (the GET lookup with `at`). */
export type AsOfResult = Schemas["AsOfResult"];
/** What a manual merge or split did: the device that holds the moved keys now, and the keys. */
export type OperatorResult = Schemas["OperatorResult"];
export type DeviceDetail = Schemas["DeviceDetail"];

/** The GET lookup's parameters; the service tries them strongest first. */
export type LookupQuery = NonNullable<operations["lookupCanonicalDeviceByQuery"]["parameters"]["query"]>;
/** Filters and paging of the device listing. */
export type DeviceListQuery = NonNullable<operations["listCanonicalDevices"]["parameters"]["query"]>;
export type HistoryQuery = NonNullable<operations["getCanonicalDeviceHistory"]["parameters"]["query"]>;
