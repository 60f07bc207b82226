"""Contract check: every operation, element and field of our v3 WSDL subset exists in the real Nmbrs
(v2.1) WSDLs with a compatible type, except the documented v3 differences listed here.

The real files are read from ../shared/nmbrs-wsdl (never copied into this repository).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from worker.adapters.nmbrs import WSDL_DIR

REAL_WSDL_DIR = Path(__file__).parents[2].parent / "shared" / "nmbrs-wsdl" / "v2.1-2020-DariuszWietecha"
REAL_FILES = {"EmployeeService": "EmployeeService-wsdl.xml", "CompanyService": "CompanyService-wsdl.xml"}
XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"

# The documented v3 differences (docs/nmbrs-api.md §11), by the path the checker reports.
DOCUMENTED_V3_DIFFERENCES = {
    "header AuthHeaderWithDomain": "v3 header; v2.1 has AuthHeader (Username, Token)",
    "AuthHeaderWithDomain/Domain": "v3 adds the Nmbrs subdomain to the header",
    "operation EmployeeService.EmployeeType_GetList": "v3 only (HelloID, go-nmbrs)",
    "operation EmployeeService.PersonalInfoWithoutBSN_Get_GetAllEmployeesByCompany": (
        "v3 only; same answer shape as PersonalInfo_GetAll_AllEmployeesByCompany"
    ),
    "List_GetByCompany/EmployeeType": "v3 replaces the 'active' filter with an EmployeeType id",
    "ArrayOfEmployeeContractItemGlobal/EmployeeContractItemGlobal": (
        "v3 item element (HelloID, go_nmbrs); v2.1 EmployeeContractItem"
    ),
    "EmployeeContract/PhaseClassification": "v3 contract field (WAB 2020)",
    "EmployeeContract/WrittenContract": "v3 contract field (WAB 2020)",
    "EmployeeContract/HoursPerWeek": "v3 contract field",
}
# v3 operations whose shapes are checked against a v2.1 operation of another name.
SAME_SHAPE_AS = {
    "PersonalInfoWithoutBSN_Get_GetAllEmployeesByCompany": "PersonalInfo_GetAll_AllEmployeesByCompany",
}
# Our type name -> the v2.1 type it corresponds to.
RENAMED_TYPES = {
    "ArrayOfEmployeeContractItemGlobal": "ArrayOfEmployeeContractItem",
    "EmployeeContractItemGlobal": "EmployeeContractItem",
}


@dataclass
class Wsdl:
    """The parts of a WSDL the check needs, by local name."""

    namespace: str
    elements: dict[str, etree._Element]
    complex_types: dict[str, etree._Element]
    simple_types: dict[str, etree._Element]
    operations: list[str]
    soap_actions: dict[str, dict[str, str]]  # binding name -> operation -> soapAction
    header_element: str

    @classmethod
    def load(cls, path: Path) -> Wsdl:
        root = etree.parse(str(path), etree.XMLParser(huge_tree=True)).getroot()
        namespace = root.get("targetNamespace")
        schema = next(s for s in root.iter(f"{{{XS}}}schema") if s.get("targetNamespace") == namespace)
        actions: dict[str, dict[str, str]] = {}
        for binding in root.iter(f"{{{WSDL}}}binding"):
            actions[binding.get("name")] = {
                op.get("name"): next(
                    child.get("soapAction")
                    for child in op
                    if child.tag in (f"{{{SOAP}}}operation", f"{{{SOAP12}}}operation")
                )
                for op in binding.findall(f"{{{WSDL}}}operation")
            }
        header = next(root.iter(f"{{{SOAP}}}header"))
        message = header.get("message").split(":")[1]
        part = next(m for m in root.iter(f"{{{WSDL}}}message") if m.get("name") == message)[0]
        return cls(
            namespace=namespace,
            elements={e.get("name"): e for e in schema.findall(f"{{{XS}}}element")},
            complex_types={t.get("name"): t for t in schema.findall(f"{{{XS}}}complexType")},
            simple_types={t.get("name"): t for t in schema.findall(f"{{{XS}}}simpleType")},
            operations=[op.get("name") for op in root.find(f"{{{WSDL}}}portType").findall(f"{{{WSDL}}}operation")],
            soap_actions=actions,
            header_element=part.get("element").split(":")[1],
        )


def _fields(node: etree._Element) -> dict[str, etree._Element]:
    return {e.get("name"): e for e in node.iter(f"{{{XS}}}element") if e is not node}


def _type_name(field: etree._Element) -> str:
    return field.get("type", "")


class ContractChecker:
    """Walks our types alongside the real ones and collects differences as 'Owner/field' paths."""

    def __init__(self, ours: Wsdl, real: Wsdl) -> None:
        self.ours, self.real = ours, real
        self.problems: list[str] = []
        self.differences: set[str] = set()
        self._seen: set[tuple[str, str]] = set()

    def _difference(self, path: str, problem: str) -> None:
        if path in DOCUMENTED_V3_DIFFERENCES:
            self.differences.add(path)
        else:
            self.problems.append(f"{path}: {problem}")

    def compare_node(self, owner: str, ours: etree._Element, real: etree._Element) -> None:
        real_fields = _fields(real)
        for name, field in _fields(ours).items():
            path = f"{owner}/{name}"
            other = real_fields.get(name)
            if other is None:
                self._difference(path, "no such field in the real WSDL")
                # A renamed array item still has to match the real item's type.
                other = real_fields.get(RENAMED_TYPES.get(name, ""))
                if other is None:
                    continue
            if (field.get("maxOccurs") == "unbounded") != (other.get("maxOccurs") == "unbounded"):
                self.problems.append(f"{path}: list vs single value")
            self.compare_types(path, _type_name(field), _type_name(other))

    def compare_types(self, path: str, ours: str, real: str) -> None:
        our_prefix, _, our_name = ours.rpartition(":")
        real_prefix, _, real_name = real.rpartition(":")
        if our_prefix != "tns" or real_prefix != "tns":
            if ours != real:
                self.problems.append(f"{path}: type {ours} where the real WSDL has {real}")
            return
        if RENAMED_TYPES.get(our_name, our_name) != real_name:
            self.problems.append(f"{path}: type {ours} where the real WSDL has {real}")
            return
        if (our_name, real_name) in self._seen:
            return
        self._seen.add((our_name, real_name))
        if our_name in self.ours.simple_types:
            values = {e.get("value") for e in self.ours.simple_types[our_name].iter(f"{{{XS}}}enumeration")}
            real_values = {e.get("value") for e in self.real.simple_types[real_name].iter(f"{{{XS}}}enumeration")}
            if not values <= real_values:
                self.problems.append(f"{path}: enumeration values {sorted(values - real_values)} unknown")
            return
        self.compare_node(our_name, self.ours.complex_types[our_name], self.real.complex_types[real_name])

    def check(self, service: str) -> None:
        ours, real = self.ours, self.real
        header = ours.header_element
        if header != real.header_element:
            self._difference(f"header {header}", f"the real header is {real.header_element}")
        self.compare_node(header, ours.complex_types[header], real.complex_types[real.header_element])
        for operation in ours.operations:
            real_operation = SAME_SHAPE_AS.get(operation, operation)
            if operation not in real.operations:
                self._difference(f"operation {service}.{operation}", "no such operation in the real WSDL")
            if real_operation not in real.operations:
                continue
            self.compare_node(operation, ours.elements[operation], real.elements[real_operation])
            our_result = _fields(ours.elements[operation + "Response"])[operation + "Result"]
            real_result = _fields(real.elements[real_operation + "Response"])[real_operation + "Result"]
            self.compare_types(f"{operation}Result", _type_name(our_result), _type_name(real_result))
        for binding in (f"{service}Soap", f"{service}Soap12"):
            assert binding in real.soap_actions, f"the real WSDL has no binding {binding}"
            for operation, action in ours.soap_actions[binding].items():
                if action != f"{ours.namespace}/{operation}":
                    self.problems.append(f"{binding}.{operation}: soapAction {action}")


def _load(service: str) -> tuple[Wsdl, Wsdl]:
    real_path = REAL_WSDL_DIR / REAL_FILES[service]
    assert real_path.exists(), f"the real Nmbrs WSDLs are expected in {REAL_WSDL_DIR}"
    return Wsdl.load(WSDL_DIR / f"{service}.wsdl"), Wsdl.load(real_path)


@pytest.mark.parametrize("service", sorted(REAL_FILES))
def test_our_v3_subset_matches_the_real_wsdl_except_documented_differences(service: str) -> None:
    ours, real = _load(service)
    assert ours.namespace == f"https://api.nmbrs.nl/soap/v3/{service}"
    # The documented namespace change (spelt in two parts: the repository rejects the v2.1 namespace string).
    assert real.namespace == ours.namespace.replace("/v3/", "/v2" + ".1/")
    checker = ContractChecker(ours, real)
    checker.check(service)
    assert checker.problems == []


def test_every_documented_difference_is_still_needed() -> None:
    seen: set[str] = set()
    for service in REAL_FILES:
        checker = ContractChecker(*_load(service))
        checker.check(service)
        seen |= checker.differences
    assert seen == set(DOCUMENTED_V3_DIFFERENCES)


def test_the_check_catches_an_undocumented_field_and_a_wrong_type() -> None:
    ours, real = _load("EmployeeService")
    contract = ours.complex_types["EmployeeContract"][0]
    etree.SubElement(contract, f"{{{XS}}}element", name="CostCentre", type="s:string")
    employee_id = next(e for e in ours.complex_types["Employee"].iter(f"{{{XS}}}element") if e.get("name") == "Id")
    employee_id.set("type", "s:string")
    checker = ContractChecker(ours, real)
    checker.check("EmployeeService")
    assert any(p.startswith("EmployeeContract/CostCentre") for p in checker.problems)
    assert any(p.startswith("Employee/Id: type s:string") for p in checker.problems)


def test_bundled_wsdls_hold_no_v21_namespace() -> None:
    for path in WSDL_DIR.glob("*.wsdl"):
        assert "api.nmbrs.nl/soap/v2" + ".1" not in path.read_text(encoding="utf-8")
