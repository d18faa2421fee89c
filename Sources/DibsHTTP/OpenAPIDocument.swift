import Foundation

/// The OpenAPI document of `/v1` (`openapi.yaml`, a resource of this module), served at
/// `GET /v1/openapi.yaml`.
public enum OpenAPIDocument {
    /// The document's bytes, read once from the module's resources.
    public static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let data = try? Data(contentsOf: url)
        else { return Array("openapi: 3.1.0\n# the document was not found in the module's resources\n".utf8) }
        return Array(data)
    }()
}
